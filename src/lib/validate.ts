import type { TSchema } from "@sinclair/typebox";
import { TransformKind } from "@sinclair/typebox";
import type { TypeCheck } from "@sinclair/typebox/compiler";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import type { FieldError } from "../errors";
import { refusal } from "./kinds";

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** "/recipient_details" -> "recipient_details" (a JSON Pointer, RFC 6901); "" is the whole value. */
const fieldOf = (path: string) => path.slice(1).replace(/~1/g, "/").replace(/~0/g, "~");

function message(error: ValueError, field: string, readOnly: ReadonlySet<string>, unknown: string): string {
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return "is required";
    case ValueErrorType.ObjectAdditionalProperties:
      return readOnly.has(field) ? "is read-only" : unknown;
    case ValueErrorType.ObjectMinProperties:
      return "at least one field must be given";
    case ValueErrorType.Kind:
      return refusal(error.schema as unknown as Record<string | symbol, unknown>, error.value) ?? error.message;
    default:
      return error.message;
  }
}

/**
 * Every field the schema refuses, one message each: in the order the client sent them, then the
 * missing ones in the schema's order, so that one response names all that is wrong.
 */
export function refusals(
  check: TypeCheck<TSchema>,
  value: Record<string, unknown>,
  readOnly: ReadonlySet<string>,
  unknown: string,
): FieldError[] {
  const byField = new Map<string, string>();
  for (const error of check.Errors(value)) {
    const field = fieldOf(error.path);
    if (!byField.has(field)) byField.set(field, message(error, field, readOnly, unknown));
  }
  const sent = Object.keys(value);
  const rank = (field: string) => (sent.includes(field) ? sent.indexOf(field) : sent.length);
  return [...byField].sort(([a], [b]) => rank(a) - rank(b)).map(([field, refused]) => ({ field, message: refused }));
}

type Transform = { [TransformKind]?: { Decode: (value: unknown) => unknown } };

/**
 * The decoded value of a flat object that its check accepted: each property through its schema's
 * Decode, where it has one. The same result as TypeCheck.Decode, which checks the value a second
 * time and walks it generically: several times the cost of the check, on every create.
 */
export function decode<T>(check: TypeCheck<TSchema>, value: Record<string, unknown>): T {
  const properties = (check.Schema() as unknown as { properties: Record<string, Transform> }).properties;
  const decoded: Record<string, unknown> = {};
  for (const [field, raw] of Object.entries(value)) {
    const transform = (properties[field] as Transform)[TransformKind];
    decoded[field] = transform ? transform.Decode(raw) : raw;
  }
  return decoded as T;
}

/** A JSON object: not an array, nor a top-level number (parsed as a JsonNumber). */
export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/** A JSON body checked against its schema: every refused field named, or the decoded value. */
export function validateBody<T>(check: TypeCheck<TSchema>, readOnly: ReadonlySet<string>, body: unknown): Validated<T> {
  if (!isPlainObject(body)) return { ok: false, errors: [{ field: "", message: "the body must be a JSON object" }] };
  if (!check.Check(body)) return { ok: false, errors: refusals(check, body, readOnly, "is not a known field") };
  return { ok: true, value: decode<T>(check, body) };
}
