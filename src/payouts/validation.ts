import type { FieldError } from "../errors";
import { parseAmount } from "./amount";
import {
  COMMENT_MAX,
  type CreatePayoutInput,
  CURRENCIES,
  type Currency,
  PAGE_LIMIT_DEFAULT,
  PAGE_LIMIT_MAX,
  RECIPIENT_MAX,
  STATUSES,
  type Status,
  type UpdatePayoutInput,
} from "./model";

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

type Check<T> = (raw: unknown) => { ok: true; value: T } | { ok: false; message: string };

const READ_ONLY = new Set(["id", "status", "failure_reason", "created_at", "updated_at", "processed_at"]);

/** Length in Unicode code points, as PostgreSQL's varchar counts it. */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Text that PostgreSQL stores exactly as sent: no NUL, no lone surrogate silently replaced. */
function text(max: number, { trim }: { trim: boolean }): Check<string> {
  return (raw) => {
    if (typeof raw !== "string") return { ok: false, message: "must be a string" };
    if (!raw.isWellFormed()) return { ok: false, message: "must be valid Unicode (no lone surrogates)" };
    if (raw.includes("\u0000")) return { ok: false, message: "must not contain NUL characters" };
    const value = trim ? raw.trim() : raw;
    if (trim && value.length === 0) return { ok: false, message: "must not be blank" };
    if (value.length > max && codePoints(value) > max) {
      return { ok: false, message: `must be at most ${max} characters` };
    }
    return { ok: true, value };
  };
}

function oneOf<T extends string>(allowed: readonly T[]): Check<T> {
  return (raw) =>
    typeof raw === "string" && (allowed as readonly string[]).includes(raw)
      ? { ok: true, value: raw as T }
      : { ok: false, message: `must be one of ${allowed.join(", ")}` };
}

const amount: Check<string> = (raw) => {
  const result = parseAmount(raw);
  return result.ok ? result : { ok: false, message: result.message };
};

const cancelOnly: Check<"CANCELLED"> = (raw) => {
  if (raw === "CANCELLED") return { ok: true, value: raw };
  if (typeof raw === "string" && (STATUSES as readonly string[]).includes(raw)) {
    return { ok: false, message: "can only be set to CANCELLED; processing sets the other statuses" };
  }
  return { ok: false, message: "must be CANCELLED" };
};

const editable = {
  amount,
  currency: oneOf(CURRENCIES),
  recipient_details: text(RECIPIENT_MAX, { trim: true }),
  comment: text(COMMENT_MAX, { trim: false }),
};

/**
 * Checks every field of a JSON object against its rule and collects every error, so that one
 * response names all that is wrong. Unknown fields and read-only fields are errors too.
 */
function validateObject<T>(
  body: unknown,
  checks: Record<string, Check<unknown>>,
  required: string[],
  readOnly: Set<string>,
): Validated<T> {
  // A plain object only: an array is not one, nor a top-level number (parsed as a JsonNumber).
  if (typeof body !== "object" || body === null || Object.getPrototypeOf(body) !== Object.prototype) {
    return { ok: false, errors: [{ field: "", message: "the body must be a JSON object" }] };
  }
  const errors: FieldError[] = [];
  const value: Record<string, unknown> = {};
  for (const [field, raw] of Object.entries(body)) {
    // Own properties only: a field named "constructor" or "__proto__" is unknown, not Object's.
    const check = Object.hasOwn(checks, field) ? checks[field] : undefined;
    if (!check) {
      errors.push({ field, message: readOnly.has(field) ? "is read-only" : "is not a known field" });
      continue;
    }
    const result = check(raw);
    if (result.ok) value[field] = result.value;
    else errors.push({ field, message: result.message });
  }
  for (const field of required) {
    if (!Object.hasOwn(body, field)) errors.push({ field, message: "is required" });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: value as T };
}

export function validateCreate(body: unknown): Validated<CreatePayoutInput> {
  const result = validateObject<CreatePayoutInput>(
    body,
    editable,
    ["amount", "currency", "recipient_details"],
    READ_ONLY,
  );
  if (result.ok) result.value.comment ??= "";
  return result;
}

export function validateUpdate(body: unknown): Validated<UpdatePayoutInput> {
  const readOnly = new Set([...READ_ONLY].filter((f) => f !== "status"));
  const result = validateObject<UpdatePayoutInput>(body, { ...editable, status: cancelOnly }, [], readOnly);
  if (result.ok && Object.keys(result.value).length === 0) {
    return { ok: false, errors: [{ field: "", message: "at least one field must be given" }] };
  }
  return result;
}

export type Cursor = { createdAt: Date; id: string };

export type ListQuery = {
  limit: number;
  cursor?: Cursor;
  status?: Status;
  currency?: Currency;
  createdAfter?: Date;
  createdBefore?: Date;
};

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string) => UUID.test(s);

const FILTERS = ["status", "currency", "created_after", "created_before"] as const;

/**
 * A cursor names the last row of a page and carries the list it belongs to: the query parameters
 * of that list's first page (its filters and limit), as they were validated. Following it alone
 * continues the same list.
 */
export function encodeCursor(last: Cursor, query: ListQuery): string {
  const list = {
    limit: `${query.limit}`,
    status: query.status,
    currency: query.currency,
    created_after: query.createdAfter?.toISOString(),
    created_before: query.createdBefore?.toISOString(),
  };
  return Buffer.from(JSON.stringify({ at: last.createdAt.toISOString(), id: last.id, list })).toString("base64url");
}

function decodeCursor(raw: string): { position: Cursor; list: ListQuery; filters: Set<string> } | undefined {
  let token: unknown;
  try {
    token = JSON.parse(Buffer.from(raw, "base64url").toString());
  } catch {
    return undefined;
  }
  if (!isPlainObject(token) || Object.keys(token).length !== 3) return undefined;
  const { at, id, list } = token;
  const createdAt = typeof at === "string" ? instant(at) : undefined;
  if (!createdAt || typeof id !== "string" || !isUuid(id) || !isPlainObject(list)) return undefined;
  const params = Object.entries(list);
  if (params.some(([name, value]) => typeof value !== "string" || name === "cursor")) return undefined;
  const query = readQuery(params as [string, string][]);
  if (!query.ok) return undefined;
  return {
    position: { createdAt, id: id.toLowerCase() },
    list: query.value,
    filters: new Set(params.map(([name]) => name).filter((name) => name !== "limit")),
  };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;

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
function instant(raw: string): Date | undefined {
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

const queryChecks: Record<string, (raw: string, q: ListQuery) => string | undefined> = {
  limit: (raw, q) => {
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > PAGE_LIMIT_MAX) {
      return `must be a whole number from 1 to ${PAGE_LIMIT_MAX}`;
    }
    q.limit = Number(raw);
  },
  status: (raw, q) => {
    if (!(STATUSES as readonly string[]).includes(raw)) return `must be one of ${STATUSES.join(", ")}`;
    q.status = raw as Status;
  },
  currency: (raw, q) => {
    if (!(CURRENCIES as readonly string[]).includes(raw)) return `must be one of ${CURRENCIES.join(", ")}`;
    q.currency = raw as Currency;
  },
  created_after: (raw, q) => {
    q.createdAfter = instant(raw);
    if (!q.createdAfter) return "must be an RFC 3339 timestamp, like 2026-11-26T10:15:30Z";
  },
  created_before: (raw, q) => {
    q.createdBefore = instant(raw);
    if (!q.createdBefore) return "must be an RFC 3339 timestamp, like 2026-11-26T10:15:30Z";
  },
};

/** The query parameters other than the cursor, each checked once. */
function readQuery(params: Iterable<[string, string]>): Validated<ListQuery> {
  const query: ListQuery = { limit: PAGE_LIMIT_DEFAULT };
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  for (const [field, raw] of params) {
    // Own properties only: a parameter named "isPrototypeOf" is unknown, not Object's.
    const check = Object.hasOwn(queryChecks, field) ? queryChecks[field] : undefined;
    let message: string | undefined;
    if (!check) message = "is not a known query parameter";
    else if (seen.has(field)) message = "must be given once";
    else message = check(raw, query);
    seen.add(field);
    if (message) errors.push({ field, message });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: query };
}

const sameFilters = (a: ListQuery, b: ListQuery) =>
  a.status === b.status &&
  a.currency === b.currency &&
  a.createdAfter?.getTime() === b.createdAfter?.getTime() &&
  a.createdBefore?.getTime() === b.createdBefore?.getTime();

/**
 * The list a request asks for. With a cursor, the list is the cursor's: its filters apply whether
 * or not the request repeats them, and filters that differ from them are refused rather than
 * silently mixed into another list. A limit given with a cursor changes only the page size.
 */
export function validateListQuery(params: URLSearchParams): Validated<ListQuery> {
  const cursors = params.getAll("cursor");
  const others = [...params].filter(([field]) => field !== "cursor");
  const read = readQuery(others);
  const errors = read.ok ? [] : read.errors;
  if (cursors.length === 0) return read;
  if (cursors.length > 1) return { ok: false, errors: [...errors, { field: "cursor", message: "must be given once" }] };
  const cursor = decodeCursor(cursors[0] as string);
  if (!cursor)
    return { ok: false, errors: [...errors, { field: "cursor", message: "is not a cursor this service issued" }] };
  if (!read.ok) return read;
  const sent = others.map(([field]) => field).filter((field) => (FILTERS as readonly string[]).includes(field));
  if (sent.length > 0 && (sent.length !== cursor.filters.size || !sameFilters(read.value, cursor.list))) {
    return {
      ok: false,
      errors: [
        {
          field: "cursor",
          message: "belongs to a list with other filters: send it alone, or with the filters of its first page",
        },
      ],
    };
  }
  const limit = others.some(([field]) => field === "limit") ? read.value.limit : cursor.list.limit;
  return { ok: true, value: { ...cursor.list, limit, cursor: cursor.position } };
}
