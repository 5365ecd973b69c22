import type { TSchema } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import type { FieldError } from "../errors";
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
import { type CursorToken, encodeCursor, type Position, refusal } from "./rules";

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

/** A JSON object: not an array, nor a top-level number (parsed as a JsonNumber). */
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;

function validateBody<T>(check: TypeCheck<TSchema>, readOnly: ReadonlySet<string>, body: unknown): Validated<T> {
  if (!isPlainObject(body)) return { ok: false, errors: [{ field: "", message: "the body must be a JSON object" }] };
  if (!check.Check(body)) return { ok: false, errors: refusals(check, body, readOnly, "is not a known field") };
  return { ok: true, value: check.Decode(body) as T };
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

export type ListQuery = {
  limit: number;
  cursor?: Cursor;
  status?: Status;
  currency?: Currency;
  createdAfter?: Date;
  createdBefore?: Date;
};

type ListParams = {
  limit?: number;
  cursor?: CursorToken;
  status?: Status;
  currency?: Currency;
  created_after?: Date;
  created_before?: Date;
};

const FILTERS = ["status", "currency", "created_after", "created_before"] as const;

/** Query parameters given once each, checked against ListQueryParams. */
function readParams(params: [string, string][]): Validated<ListParams> {
  const counts = new Map<string, number>();
  for (const [field] of params) counts.set(field, (counts.get(field) ?? 0) + 1);
  const repeated = [...counts].filter(([, n]) => n > 1).map(([field]) => field);
  // Object.fromEntries defines own properties: a parameter named __proto__ is just a name.
  const query = Object.fromEntries(params.filter(([field]) => !repeated.includes(field)));
  const errors = listCheck.Check(query) ? [] : refusals(listCheck, query, new Set(), "is not a known query parameter");
  for (const field of repeated) errors.push({ field, message: "must be given once" });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: listCheck.Decode(query) as ListParams };
}

/** The query parameters that make a list (its first page's), as a cursor carries them. */
export function listParams(query: ListQuery): Record<string, string | undefined> {
  return {
    limit: `${query.limit}`,
    status: query.status,
    currency: query.currency,
    created_after: query.createdAfter?.toISOString(),
    created_before: query.createdBefore?.toISOString(),
  };
}

/** The cursor of the page after the one that ended at `last`, in the list `query` asked for. */
export const nextCursor = (last: Position, query: ListQuery) => encodeCursor(last, listParams(query));

const toListQuery = (params: ListParams): ListQuery => ({
  limit: params.limit ?? PAGE_LIMIT_DEFAULT,
  status: params.status,
  currency: params.currency,
  createdAfter: params.created_after,
  createdBefore: params.created_before,
});

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
export function validateListQuery(search: URLSearchParams): Validated<ListQuery> {
  const read = readParams([...search]);
  if (!read.ok) return read;
  const { cursor } = read.value;
  const query = toListQuery(read.value);
  if (!cursor) return { ok: true, value: query };
  const refused = (message: string): Validated<ListQuery> => ({ ok: false, errors: [{ field: "cursor", message }] });
  // The cursor's own list is checked as a query would be: one that fails was not issued here.
  const own = readParams(Object.entries(cursor.list));
  if (!own.ok) return refused("is not a cursor this service issued");
  const list = toListQuery(own.value);
  const sent = FILTERS.filter((filter) => search.has(filter));
  const listFilters = FILTERS.filter((filter) => Object.hasOwn(cursor.list, filter));
  if (sent.length > 0 && (sent.length !== listFilters.length || !sameFilters(query, list))) {
    return refused("belongs to a list with other filters: send it alone, or with the filters of its first page");
  }
  return {
    ok: true,
    value: { ...list, limit: search.has("limit") ? query.limit : list.limit, cursor: cursor.position },
  };
}
