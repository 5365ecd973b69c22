import { Kind, type SchemaOptions, type TUnsafe, Type, TypeRegistry } from "@sinclair/typebox";
import { JsonNumber } from "./json-number";
import { isUuid } from "./uuid";

/*
 * The building blocks of the request schemas in model.ts: TypeBox kinds, each registered once
 * here with the rule that checks it. Each kind's schema carries the JSON Schema keywords that the
 * OpenAPI document shows; its rule enforces them, plus what JSON Schema cannot state. Those extra
 * rules, the only places where the server is stricter than its document, are:
 *
 * - Amount (registered in src/payouts/amount.ts): a JSON number is judged by the digits written in
 *   the JSON text (at most two fraction digits, no exponent), not by the float it rounds to.
 * - Text: no NUL character and no lone UTF-16 surrogate (PostgreSQL would refuse or alter them);
 *   TrimmedText is trimmed before its length is counted. Lengths count Unicode code points, as
 *   JSON Schema and PostgreSQL do (TypeBox's own maxLength counts UTF-16 units).
 * - Timestamp: a real instant within years 0001 to 9999 UTC, with no leap second (PostgreSQL has
 *   neither year 0 nor leap seconds).
 * - Digits: a query parameter's integer is written in decimal digits only (no sign, exponent or
 *   fraction).
 * - Integer: a body's whole number is judged by the digits written (no fraction, no exponent).
 * - Cursor: one this service issued (src/lib/lists.ts), carrying its list's query parameters.
 * - Uuid: RFC 4122's string form, in either case (some validators also take a urn:uuid: prefix).
 *
 * Enum is a kind only because TypeBox writes enumerations as anyOf of consts: `enum` is what JSON
 * Schema and Swagger UI's drop-downs understand. It adds no rule.
 */

/** What is wrong with a value, or undefined when it is right. */
type Rule = (schema: Record<string | symbol, unknown>, value: unknown) => string | undefined;

/** A schema's own wording for a refused value, where the kind's generic message says too little. */
export const Explain = Symbol("explain");
type Explanation = (value: unknown) => string | undefined;

const rules = new Map<string, Rule>();

export function register(kind: string, rule: Rule): void {
  rules.set(kind, rule);
  TypeRegistry.Set(kind, (schema, value) => rule(schema as Record<string, unknown>, value) === undefined);
}

/** Why a value of a custom kind was refused: the schema's own explanation first, then the rule's. */
export function refusal(schema: Record<string | symbol, unknown>, value: unknown): string | undefined {
  const explain = schema[Explain] as Explanation | undefined;
  const rule = rules.get(schema[Kind] as string);
  return explain?.(value) ?? rule?.(schema, value);
}

// --- Enum -----------------------------------------------------------------------------------

register("StringEnum", (schema, value) => {
  const allowed = schema.enum as string[];
  if (typeof value === "string" && allowed.includes(value)) return undefined;
  return allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of ${allowed.join(", ")}`;
});

export const Enum = <T extends string>(values: readonly T[], options: SchemaOptions = {}): TUnsafe<T> =>
  Type.Unsafe<T>({ ...options, [Kind]: "StringEnum", type: "string", enum: [...values] });

// --- Text -----------------------------------------------------------------------------------

/** Length in Unicode code points, as JSON Schema and PostgreSQL count it. */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function textRule(trim: boolean): Rule {
  return (schema, value) => {
    if (typeof value !== "string") return "must be a string";
    if (!value.isWellFormed()) return "must be valid Unicode (no lone surrogates)";
    if (value.includes("\u0000")) return "must not contain NUL characters";
    const text = trim ? value.trim() : value;
    const [min, max] = [schema.minLength as number | undefined, schema.maxLength as number];
    if (min !== undefined && text.length === 0) return "must not be blank";
    if (text.length > max && codePoints(text) > max) return `must be at most ${max} characters`;
    return undefined;
  };
}
register("Text", textRule(false));
register("TrimmedText", textRule(true));

/** Text kept exactly as sent. */
export const Text = (options: SchemaOptions & { maxLength: number }) =>
  Type.Unsafe<string>({ ...options, [Kind]: "Text", type: "string" });

/** Text stored trimmed; not blank. `\S` states "not blank" in the document. */
export const TrimmedText = (options: SchemaOptions & { maxLength: number }) =>
  Type.Transform(
    Type.Unsafe<string>({ ...options, [Kind]: "TrimmedText", type: "string", minLength: 1, pattern: "\\S" }),
  )
    .Decode((value) => value.trim())
    .Encode((value) => value);

// --- Timestamp ------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

// The instants a timestamp may name: years 0001 to 9999 in UTC, which PostgreSQL and
// Date.prototype.toISOString both write as four digits (PostgreSQL has no year 0000).
const EARLIEST = Date.parse("0001-01-01T00:00:00.000Z");
const LATEST = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * The instant an RFC 3339 timestamp names, within years 0001 to 9999 UTC. Date alone rolls
 * 2026-02-30 over into March and drops the digits past the millisecond; timestamps are stored in
 * whole milliseconds, so a finer bound is rounded up to the next one, which selects exactly the
 * rows the exact bound would.
 */
export function instant(raw: string): Date | undefined {
  const match = RFC3339.exec(raw);
  if (!match) return undefined;
  const field = (i: number) => Number(match[i] ?? 0);
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 8, 9].map(field) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1];
  if (daysInMonth === undefined || day < 1 || day > daysInMonth) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const fraction = match[7] ?? "";
  const ms = Number(fraction.slice(1, 4).padEnd(3, "0")) + (/[1-9]/.test(fraction.slice(4)) ? 1 : 0);
  const offset = (raw.at(-6) === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  // setUTCFullYear, unlike Date.UTC, takes years 0 to 99 as written, not as 1900 to 1999.
  const at = new Date(0);
  at.setUTCFullYear(year, month - 1, day);
  at.setUTCHours(hour, minute - offset, second, ms);
  const time = at.getTime();
  return time >= EARLIEST && time <= LATEST ? at : undefined;
}

register("Timestamp", (_, value) =>
  typeof value === "string" && instant(value) ? undefined : "must be an RFC 3339 timestamp, like 2026-11-26T10:15:30Z",
);

export const Timestamp = (options: SchemaOptions = {}) =>
  Type.Transform(Type.Unsafe<string>({ ...options, [Kind]: "Timestamp", type: "string", format: "date-time" }))
    .Decode((value) => instant(value) as Date)
    .Encode((value) => value.toISOString());

// --- Digits ---------------------------------------------------------------------------------

register("Digits", (schema, value) => {
  const [min, max] = [schema.minimum as number, schema.maximum as number];
  if (typeof value === "string" && /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max) {
    return undefined;
  }
  return `must be a whole number from ${min} to ${max}`;
});

/** A query parameter's whole number, from its decimal digits. */
export const Digits = (options: SchemaOptions & { minimum: number; maximum: number }) =>
  Type.Transform(Type.Unsafe<string>({ ...options, [Kind]: "Digits", type: "integer" }))
    .Decode(Number)
    .Encode(String);

// --- Uuid -----------------------------------------------------------------------------------

register("Uuid", (_, value) => (typeof value === "string" && isUuid(value) ? undefined : "must be a UUID"));

export const Uuid = (options: SchemaOptions = {}) =>
  Type.Unsafe<string>({ ...options, [Kind]: "Uuid", type: "string", format: "uuid" });

// --- Integer (a body's) -----------------------------------------------------------------------

register("BodyInteger", (schema, value) => {
  const [min, max] = [schema.minimum as number, schema.maximum as number];
  // A body's numbers arrive as JsonNumber (parseJsonExact): judged by the digits the client wrote.
  const source = value instanceof JsonNumber ? value.source : typeof value === "number" ? String(value) : undefined;
  if (source !== undefined && /^-?\d+$/.test(source) && Number(source) >= min && Number(source) <= max) {
    return undefined;
  }
  return `must be a whole number from ${min} to ${max}`;
});

/** A whole number in a JSON body, written without fraction or exponent. */
export const Integer = (options: SchemaOptions & { minimum: number; maximum: number }) =>
  Type.Transform(Type.Unsafe<number | JsonNumber>({ ...options, [Kind]: "BodyInteger", type: "integer" }))
    .Decode((value) => Number(value instanceof JsonNumber ? value.source : value))
    .Encode((value) => value);
