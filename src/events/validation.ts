import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type ListSpec, limitOf, type PageQuery, unfilteredList, validateList } from "../lib/lists";
import { EventListQueryParams, type EventType } from "./model";

export type EventListQuery = PageQuery & {
  type?: EventType;
  payoutId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
};

export const eventList: ListSpec<EventListQuery> = {
  check: TypeCompiler.Compile(EventListQueryParams),
  toQuery: (params) => ({
    limit: limitOf(params),
    type: params.type as EventType | undefined,
    payoutId: (params.payout_id as string | undefined)?.toLowerCase(),
    createdAfter: params.created_after as Date | undefined,
    createdBefore: params.created_before as Date | undefined,
  }),
  filters: (query) => ({
    type: query.type,
    payout_id: query.payoutId,
    created_after: query.createdAfter?.toISOString(),
    created_before: query.createdBefore?.toISOString(),
  }),
};

export const validateEventListQuery = (search: URLSearchParams) => validateList(search, eventList);
export const validateHistoryQuery = (search: URLSearchParams) => validateList(search, unfilteredList);
