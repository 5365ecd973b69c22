import { Kind, type SchemaOptions, type TSchema, Type } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { Digits, instant, register } from "./kinds";
import { isUuid } from "./uuid";
import { decode, isPlainObject, refusals, type Validated } from "./validate";

/*
 * Every list of the API is one keyset-paginated list: newest (or oldest) first by (created_at, id),
 * read a page at a time through an opaque cursor that carries where its page ended and the query
 * parameters of its list's first page. This is that machinery, the same for every feature.
 */

const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 200;

// --- Cursor ---------------------------------------------------------------------------------

/** Where a page ended: the (created_at, id) of its last row. */
export type Position = { createdAt: Date; id: string };
/** A cursor: where its page ended, and the query parameters of its list's first page. */
type CursorToken = { position: Position; list: Record<string, string> };

export const encodeCursor = (position: Position, list: Record<string, string | undefined>): string =>
  Buffer.from(JSON.stringify({ at: position.createdAt.toISOString(), id: position.id, list })).toString("base64url");

/** The cursor's parts when it has the shape encodeCursor writes; its list is checked by its reader. */
export function decodeCursor(raw: string): CursorToken | undefined {
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
  if (Object.hasOwn(list, "cursor") || Object.values(list).some((value) => typeof value !== "string")) {
    return undefined;
  }
  return { position: { createdAt, id: id.toLowerCase() }, list: list as Record<string, string> };
}

register("Cursor", (_, value) =>
  typeof value === "string" && decodeCursor(value) ? undefined : "is not a cursor this service issued",
);

const Cursor = (options: SchemaOptions = {}) =>
  Type.Transform(Type.Unsafe<string>({ ...options, [Kind]: "Cursor", type: "string" }))
    .Decode((value) => decodeCursor(value) as CursorToken)
    .Encode((token) => encodeCursor(token.position, token.list));

// --- Query ------------------------------------------------------------------------------------

/** The query parameters of every list: a page size and, past the first page, the cursor. */
export const pageParams = {
  limit: Type.Optional(
    Digits({
      minimum: 1,
      maximum: PAGE_LIMIT_MAX,
      default: PAGE_LIMIT_DEFAULT,
      description: "Page size, in decimal digits. With a cursor, the cursor's list's limit unless given.",
    }),
  ),
  cursor: Type.Optional(
    Cursor({
      description:
        "Opaque: the next_cursor of the previous page. It carries its list's filters: send it alone, or with the same filters (others are a 400).",
    }),
  ),
};

/** limit and cursor alone: the query of a list with no filters. */
export const PageQueryParams = Type.Object(pageParams, { additionalProperties: false });

/** What every list's query holds: a page size and, past the first page, where the last one ended. */
export type PageQuery = { limit: number; cursor?: Position };

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

/** A list with no filters: a payout's history (the payout is in the path), webhook endpoints, keys. */
export const unfilteredList: ListSpec<PageQuery> = {
  check: TypeCompiler.Compile(PageQueryParams),
  toQuery: (params) => ({ limit: limitOf(params) }),
  filters: () => ({}),
};

/**
 * A page of a list from its rows, read one more than `query.limit` (the extra row tells whether
 * there is a next page): its results, shown by `to`, and the cursor of the page after it.
 */
export function page<R extends Position, T, Q extends PageQuery>(
  rows: R[],
  query: Q,
  spec: ListSpec<Q>,
  to: (row: R) => T,
) {
  const results = rows.slice(0, query.limit);
  const last = results.at(-1);
  return {
    results: results.map(to),
    next_cursor: rows.length > query.limit && last ? nextListCursor(last, query, spec) : null,
  };
}
