import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type ListSpec, limitOf, nextListCursor, type PageQuery, type Position, validateList } from "../lib/lists";
import { type Validated, validateBody } from "../lib/validate";
import {
  CreatePayoutBody,
  type CreatePayoutInput,
  type Currency,
  IdempotencyKey,
  ListQueryParams,
  Payout,
  type Status,
  UpdatePayoutBody,
  type UpdatePayoutInput,
} from "./model";

// Compiled once from the schemas in model.ts, which the OpenAPI document shows.
const createCheck = TypeCompiler.Compile(CreatePayoutBody);
const updateCheck = TypeCompiler.Compile(UpdatePayoutBody);
const listCheck = TypeCompiler.Compile(ListQueryParams);
const keyCheck = TypeCompiler.Compile(IdempotencyKey);

/** The fields of a payout that a body names but may not set: the resource's, less the body's. */
const readOnlyIn = (body: { properties: Record<string, TSchema> }) =>
  new Set(Object.keys(Payout.properties).filter((field) => !Object.hasOwn(body.properties, field)));

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

export type ListQuery = PageQuery & {
  status?: Status;
  currency?: Currency;
  createdAfter?: Date;
  createdBefore?: Date;
};

export const payoutList: ListSpec<ListQuery> = {
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
