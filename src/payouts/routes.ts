import { type DocumentDecoration, Elysia } from "elysia";
import { CreateOutcomeUnknownError } from "../db/errors";
import { ValidationFailed } from "../errors";
import { readJsonBody } from "../http/body";
import { type FeatureDocs, jsonContent, queryParameters, ref } from "../http/openapi";
import { OutcomeUnknown, RETRY_WITH_KEY } from "../http/problem";
import { aboutPayout } from "../http/request-log";
import { type Examples, problemContent, problemExample, problemExamples, responses } from "../http/responses";
import { json, pathId } from "../http/route";
import { callerOf } from "../keys/auth";
import {
  CreatePayoutBody,
  IDEMPOTENCY_KEY_MAX,
  IdempotencyKey,
  ListQueryParams,
  Payout,
  PayoutIdParam,
  PayoutPage,
  PayoutProblemFields,
  UpdatePayoutBody,
} from "./model";
import type { PayoutService } from "./service";
import { isIdempotencyKey, validateCreate, validateListQuery, validateUpdate } from "./validation";

function idempotencyKey(headers: Headers): string | undefined {
  const key = headers.get("idempotency-key");
  if (key === null) return undefined;
  if (!isIdempotencyKey(key)) {
    throw new ValidationFailed(
      [{ field: "Idempotency-Key", message: `must be 1 to ${IDEMPOTENCY_KEY_MAX} visible ASCII characters` }],
      "header",
    );
  }
  return key;
}

const payoutId = (raw: string) => pathId(raw, "payout");

const payoutPath = (id: string) => `/api/payouts/${id}/`;

/** A create the database could not confirm, told to the problem mapper with where to look it up. */
const outcomeUnknownAt = (error: unknown): never => {
  if (error instanceof CreateOutcomeUnknownError) {
    const id = error.payoutId;
    throw new OutcomeUnknown({ name: "payout", id, location: payoutPath(id) }, { cause: error });
  }
  throw error;
};

const payoutResponse = (description: string, headers?: object) => ({
  description,
  content: jsonContent(ref("Payout")),
  ...(headers ? { headers } : {}),
});

const listQuery400: Examples = {
  validation_error: {
    summary: "Invalid query parameters",
    value: problemExample("validation_error", "2 query parameters are invalid", {
      errors: [
        { field: "limit", message: "must be a whole number from 1 to 200" },
        {
          field: "cursor",
          message: "belongs to a list with other filters: send it alone, or with the filters of its first page",
        },
      ],
    }),
  },
};

// A create's 503: what it means for the payout, keyed or not.
const create503 = {
  description:
    "Nothing was created by this request (Retry-After). Without an Idempotency-Key the request may be sent again. With one, an earlier request with the same key may have created the payout: retry with the same Idempotency-Key, which returns that payout (Idempotent-Replayed) or creates it once; never with another key",
  headers: { "Retry-After": { $ref: "#/components/headers/Retry-After" } },
  content: problemContent({
    ...problemExamples(503),
    keyed: {
      summary: "With an Idempotency-Key",
      value: problemExample(
        "database_unavailable",
        `this request created nothing, but an earlier one with this Idempotency-Key may have; ${RETRY_WITH_KEY}`,
      ),
    },
  }),
};

const docs = {
  create: {
    tags: ["payouts"],
    summary: "Create a payout request",
    description:
      'Stores the payout as NEW and hands it to asynchronous processing (RabbitMQ, then a worker). The request is answered as soon as the payout is committed, even while the broker is down. With an Idempotency-Key, a repeated request returns the first response again (Idempotent-Replayed: true); the same key with another body is a 422. Bodies are compared after normalisation (10.5 and "10.50" are the same amount). A key stays bound to its first response, even after that payout is deleted, for IDEMPOTENCY_KEY_TTL_MS, a server setting (7 days by default, never less than 24 hours); after that it may be used again, for a new payout.',
    parameters: [
      {
        name: "Idempotency-Key",
        in: "header",
        required: false,
        description: IdempotencyKey.description,
        schema: IdempotencyKey,
      },
    ],
    requestBody: { required: true, content: jsonContent(ref("CreatePayout")) },
    responses: {
      ...responses(
        {
          201: payoutResponse("Created (or, with Idempotent-Replayed: true, the first response replayed)", {
            Location: { required: true, description: "The payout's URL", schema: { type: "string" } },
            "Idempotent-Replayed": {
              description: "true when this is a replay of the first response for the Idempotency-Key",
              schema: { type: "string", enum: ["true"] },
            },
          }),
        },
        [400, 413, 415, 422, 504],
        {
          ...problemExamples(400),
          idempotency_key: {
            summary: "An invalid Idempotency-Key",
            value: problemExample("validation_error", "1 header is invalid", {
              errors: [{ field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters" }],
            }),
          },
        },
      ),
      503: create503,
    },
  },
  list: {
    tags: ["payouts"],
    summary: "List payout requests, newest first",
    description:
      "Keyset (cursor) pagination: pass next_cursor as cursor for the next page; every page costs the same however deep. Unknown or repeated query parameters are a 400.",
    parameters: queryParameters(ListQueryParams),
    responses: responses(
      { 200: { description: "A page", content: jsonContent(ref("PayoutPage")) } },
      [400],
      listQuery400,
    ),
  },
  get: {
    tags: ["payouts"],
    summary: "Read a payout request",
    responses: responses({ 200: payoutResponse("The payout") }, [404]),
  },
  update: {
    tags: ["payouts"],
    summary: "Change a payout request",
    description:
      "amount, currency and recipient_details change only while the payout is NEW; status may only be set to CANCELLED, only while NEW; comment changes in any status. The write is one conditional UPDATE: a cancel racing the worker's claim has exactly one winner.",
    requestBody: { required: true, content: jsonContent(ref("UpdatePayout")) },
    responses: responses({ 200: payoutResponse("The updated payout") }, [400, 404, 409, 413, 415]),
  },
  remove: {
    tags: ["payouts"],
    summary: "Delete a payout request",
    description: "Allowed for NEW, CANCELLED and FAILED payouts. PROCESSING and COMPLETED payouts are kept (409).",
    responses: responses({ 204: { description: "Deleted" } }, [404, 409]),
  },
  // TypeBox schemas are JSON Schema objects, wider than openapi-types' static types.
} as unknown as Record<"create" | "list" | "get" | "update" | "remove", DocumentDecoration>;

/** What payouts add to the document besides their operations. */
export const payoutsDocument: FeatureDocs = {
  tags: [{ name: "payouts", description: "Payout requests" }],
  schemas: {
    Payout,
    CreatePayout: CreatePayoutBody,
    UpdatePayout: UpdatePayoutBody,
    PayoutPage: {
      ...PayoutPage,
      properties: { ...PayoutPage.properties, results: { type: "array", items: ref("Payout") } },
    },
  },
  problemFields: PayoutProblemFields,
};

/**
 * The payouts resource. `onCreated` hands a committed payout to processing; it must not throw
 * or wait on the broker (the relay covers a hand-off that fails).
 */
export function payoutRoutes(service: PayoutService, onCreated: (id: string) => void) {
  return new Elysia({ name: "payouts" })
    .onParse(({ request }) => {
      // DELETE takes no body: a client need not send a Content-Type to delete.
      if (request.method !== "DELETE") return readJsonBody(request);
    })
    .post(
      "/api/payouts/",
      async ({ request, body }) => {
        const key = idempotencyKey(request.headers);
        const input = validateCreate(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        const result = await service.create(input.value, callerOf(request).id, key).catch(outcomeUnknownAt);
        if (result.replayed) {
          const { id } = result.body as { id: string };
          aboutPayout(request, id);
          return json(result.body, result.status, { location: payoutPath(id), "idempotent-replayed": "true" });
        }
        onCreated(result.payout.id);
        aboutPayout(request, result.payout.id);
        return json(result.payout, 201, { location: payoutPath(result.payout.id) });
      },
      { detail: docs.create },
    )
    .get(
      "/api/payouts/",
      async ({ request }) => {
        const query = validateListQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.list(query.value), 200);
      },
      { detail: docs.list },
    )
    .get("/api/payouts/:id/", async ({ params }) => json(await service.get(payoutId(params.id)), 200), {
      params: PayoutIdParam,
      detail: docs.get,
    })
    .patch(
      "/api/payouts/:id/",
      async ({ params, body, request }) => {
        const id = payoutId(params.id);
        const input = validateUpdate(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        return json(await service.update(id, input.value, callerOf(request).id), 200);
      },
      { params: PayoutIdParam, detail: docs.update },
    )
    .delete(
      "/api/payouts/:id/",
      async ({ params, request }) => {
        await service.remove(payoutId(params.id), callerOf(request).id);
        return new Response(null, { status: 204 });
      },
      { params: PayoutIdParam, detail: docs.remove },
    );
}
