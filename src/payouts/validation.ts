import { TransformKind, type TSchema } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import type { FieldError } from "../errors";
import { type CursorToken, encodeCursor, type Position, refusal } from "../lib/kinds";
import {
  CreatePayoutBody,
  type CreatePayoutInput,
  type Currency,
  IdempotencyKey,
  ListQueryParams,
  PAGE_LIMIT_DEFAULT,
  Payout,
  type Status,
  UpdatePayoutBody,
  type UpdatePayoutInput,
} from "./model";

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

// Compiled once from the schemas in model.ts, which the OpenAPI document shows.
const createCheck = TypeCompiler.Compile(CreatePayoutBody);
const updateCheck = TypeCompiler.Compile(UpdatePayoutBody);
const listCheck = TypeCompiler.Compile(ListQueryParams);
const keyCheck = TypeCompiler.Compile(IdempotencyKey);

/** The fields of a payout that a body names but may not set: the resource's, less the body's. */
const readOnlyIn = (body: { properties: Record<string, TSchema> }) =>
  new Set(Object.keys(Payout.properties).filter((field) => !Object.hasOwn(body.properties, field)));

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
function refusals(
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
function decode<T>(check: TypeCheck<TSchema>, value: Record<string, unknown>): T {
  const properties = (check.Schema() as unknown as { properties: Record<string, Transform> }).properties;
  const decoded: Record<string, unknown> = {};
  for (const [field, raw] of Object.entries(value)) {
    const transform = (properties[field] as Transform)[TransformKind];
    decoded[field] = transform ? transform.Decode(raw) : raw;
  }
  return decoded as T;
}

/** A JSON object: not an array, nor a top-level number (parsed as a JsonNumber). */
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;

export function validateBody<T>(check: TypeCheck<TSchema>, readOnly: ReadonlySet<string>, body: unknown): Validated<T> {
  if (!isPlainObject(body)) return { ok: false, errors: [{ field: "", message: "the body must be a JSON object" }] };
  if (!check.Check(body)) return { ok: false, errors: refusals(check, body, readOnly, "is not a known field") };
  return { ok: true, value: decode<T>(check, body) };
}

const createReadOnly = readOnlyIn(CreatePayoutBody);
const updateReadOnly = readOnlyIn(UpdatePayoutBody);

export function validateCreate(body: unknown): Validated<CreatePayoutInput> {
  const result = validateBody<CreatePayoutInput>(createCheck, createReadOnly, body);
  if (result.ok) result.value.comment ??= "";
  return result;
}

export function validateUpdate(body: unknown): Validated<UpdatePayoutInput> {
  return validateBody<UpdatePayoutInput>(updateCheck, updateReadOnly, body);
}

export const isIdempotencyKey = (key: string) => keyCheck.Check(key);

export type Cursor = Position;

/** What every list's query holds: a page size and, past the first page, where the last one ended. */
export type PageQuery = { limit: number; cursor?: Cursor };

export type ListQuery = PageQuery & {
  status?: Status;
  currency?: Currency;
  createdAfter?: Date;
  createdBefore?: Date;
};

/**
 * A cursor list: the schema of its query parameters (limit and cursor included), how the decoded
 * parameters become its query, and its filters written back as query parameters, which is what a
 * cursor carries and compares.
 */
export type ListSpec<Q extends PageQuery> = {
  check: TypeCheck<TSchema>;
  toQuery: (params: Record<string, unknown>) => Q;
  filters: (query: Q) => Record<string, string | undefined>;
};

/** A list's page size: the `limit` given, or the default. */
export const limitOf = (params: Record<string, unknown>) => (params.limit as number | undefined) ?? PAGE_LIMIT_DEFAULT;

/** Query parameters given once each, checked against the list's schema. */
function readParams(check: TypeCheck<TSchema>, params: [string, string][]): Validated<Record<string, unknown>> {
  const counts = new Map<string, number>();
  for (const [field] of params) counts.set(field, (counts.get(field) ?? 0) + 1);
  const repeated = [...counts].filter(([, n]) => n > 1).map(([field]) => field);
  // Object.fromEntries defines own properties: a parameter named __proto__ is just a name.
  const query = Object.fromEntries(params.filter(([field]) => !repeated.includes(field)));
  const errors = check.Check(query) ? [] : refusals(check, query, new Set(), "is not a known query parameter");
  for (const field of repeated) errors.push({ field, message: "must be given once" });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: decode<Record<string, unknown>>(check, query) };
}

/** The cursor of the page after the one that ended at `last`, in the list `query` asked for. */
export const nextListCursor = <Q extends PageQuery>(last: Position, query: Q, spec: ListSpec<Q>) =>
  encodeCursor(last, { limit: `${query.limit}`, ...spec.filters(query) });

/**
 * The list a request asks for. With a cursor, the list is the cursor's: its filters apply whether
 * or not the request repeats them, and filters that differ from them are refused rather than
 * silently mixed into another list. A limit given with a cursor changes only the page size.
 */
export function validateList<Q extends PageQuery>(search: URLSearchParams, spec: ListSpec<Q>): Validated<Q> {
  const read = readParams(spec.check, [...search]);
  if (!read.ok) return read;
  const cursor = read.value.cursor as CursorToken | undefined;
  const query = spec.toQuery(read.value);
  if (!cursor) return { ok: true, value: query };
  const refused = (message: string): Validated<Q> => ({ ok: false, errors: [{ field: "cursor", message }] });
  // The cursor's own list is checked as a query would be: one that fails was not issued here.
  const own = readParams(spec.check, Object.entries(cursor.list));
  if (!own.ok) return refused("is not a cursor this service issued");
  const list = spec.toQuery(own.value);
  const filters = Object.keys(spec.filters(query));
  const sent = filters.filter((filter) => search.has(filter));
  const listFilters = filters.filter((filter) => Object.hasOwn(cursor.list, filter));
  const sameFilters = JSON.stringify(spec.filters(query)) === JSON.stringify(spec.filters(list));
  if (sent.length > 0 && (sent.length !== listFilters.length || !sameFilters)) {
    return refused("belongs to a list with other filters: send it alone, or with the filters of its first page");
  }
  return {
    ok: true,
    value: { ...list, limit: search.has("limit") ? query.limit : list.limit, cursor: cursor.position },
  };
}

const payoutList: ListSpec<ListQuery> = {
  check: listCheck,
  toQuery: (params) => ({
    limit: limitOf(params),
    status: params.status as Status | undefined,
    currency: params.currency as Currency | undefined,
    createdAfter: params.created_after as Date | undefined,
    createdBefore: params.created_before as Date | undefined,
  }),
  filters: (query) => ({
    status: query.status,
    currency: query.currency,
    created_after: query.createdAfter?.toISOString(),
    created_before: query.createdBefore?.toISOString(),
  }),
};

export const validateListQuery = (search: URLSearchParams) => validateList(search, payoutList);

export const nextCursor = (last: Position, query: ListQuery) => nextListCursor(last, query, payoutList);
