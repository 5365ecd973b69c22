import { type DocumentDecoration, Elysia } from "elysia";
import { ValidationFailed } from "../errors";
import { type FeatureDocs, QUERY_PARAMETERS, queryParameters } from "../http/openapi";
import { responses } from "../http/responses";
import { json, pathId } from "../http/route";
import { PayoutIdParam } from "../payouts/model";
import { EventListQueryParams, EventPage, PageQueryParams, PayoutEvent } from "./model";
import type { EventService } from "./service";
import { validateEventListQuery, validateHistoryQuery } from "./validation";

const page = {
  200: {
    description: "A page",
    content: { "application/json": { schema: { $ref: "#/components/schemas/EventPage" } } },
  },
};
const docs = {
  history: {
    tags: ["events"],
    summary: "A payout's history, oldest first",
    description:
      "Every change of the payout, in the order it happened, also after the payout was deleted. An id that never was a payout is a 404 (so is one that is not a UUID). Payouts stored before the audit trail existed start their history at their next change. Unknown or repeated query parameters are a 400.",
    [QUERY_PARAMETERS]: queryParameters(PageQueryParams),
    responses: responses(page, [400, 404]),
  },
  list: {
    tags: ["events"],
    summary: "All events, newest first",
    description:
      "Keyset (cursor) pagination: every page costs the same however deep. Unknown or repeated query parameters are a 400.",
    parameters: queryParameters(EventListQueryParams),
    responses: responses(page, [400]),
  },
} as unknown as Record<"history" | "list", DocumentDecoration>;

/** What the audit trail adds to the document besides its operations. */
export const eventsDocument: FeatureDocs = {
  tags: [{ name: "events", description: "The audit trail: every change of every payout" }],
  schemas: { PayoutEvent, EventPage },
};

/** The audit trail: read-only, written by PostgreSQL itself. */
export function eventRoutes(service: EventService) {
  return new Elysia({ name: "events" })
    .get(
      "/api/payouts/:id/events/",
      async ({ params, request }) => {
        const id = pathId(params.id, "payout");
        const query = validateHistoryQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.history(id, query.value), 200);
      },
      { params: PayoutIdParam, detail: docs.history },
    )
    .get(
      "/api/events/",
      async ({ request }) => {
        const query = validateEventListQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.list(query.value), 200);
      },
      { detail: docs.list },
    );
}
