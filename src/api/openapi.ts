import { openapi } from "@elysiajs/openapi";
import { type DocumentDecoration, Elysia } from "elysia";
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { EventPage, PayoutEvent } from "../events/model";
import {
  CreatePayoutBody,
  IdempotencyKey,
  ListQueryParams,
  Payout,
  PayoutPage,
  UpdatePayoutBody,
} from "../payouts/model";
import { ProblemSchema } from "./problem";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });

const problems: Record<number, string> = {
  400: "Invalid JSON, fields, query parameters or Idempotency-Key",
  404: "No such payout (also for an id that is not a UUID)",
  409: "The payout's status forbids the change; current_status names it",
  413: "Body over 64 KiB",
  415: "Body that is not application/json",
  422: "Idempotency-Key reused with a different body; nothing was created",
  503: "The database is unreachable or too slow (Retry-After); for a create, certainly nothing was created",
  504: "create_outcome_unknown: the database could not confirm whether the payout was stored. payout_id and Location name it; after Retry-After, GET it: 404 means it was not created and never will be",
};

/** OpenAPI responses: the success ones given, plus the problem+json ones by status. */
export function responses(success: Record<number, object>, errors: number[]) {
  const out: Record<string, object> = { ...success };
  for (const status of [...errors, 503]) {
    out[status] = {
      description: problems[status],
      content: { "application/problem+json": { schema: ref("Problem") } },
    };
  }
  out[500] = {
    description: "A bug: a generic body",
    content: { "application/problem+json": { schema: ref("Problem") } },
  };
  return out;
}

export const payoutResponse = (description: string, headers?: object) => ({
  description,
  content: json(ref("Payout")),
  ...(headers ? { headers } : {}),
});

export const docs = {
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
    requestBody: { required: true, content: json(ref("CreatePayout")) },
    responses: responses(
      {
        201: payoutResponse("Created (or, with Idempotent-Replayed: true, the first response replayed)", {
          Location: { description: "The payout's URL", schema: { type: "string" } },
          "Idempotent-Replayed": {
            description: "true when this is a replay of the first response for the Idempotency-Key",
            schema: { type: "string", enum: ["true"] },
          },
        }),
      },
      [400, 413, 415, 422, 504],
    ),
  },
  list: {
    tags: ["payouts"],
    summary: "List payout requests, newest first",
    description:
      "Keyset (cursor) pagination: pass next_cursor as cursor for the next page; every page costs the same however deep. Unknown or repeated query parameters are a 400.",
    parameters: Object.entries(ListQueryParams.properties).map(([name, schema]) => ({
      name,
      in: "query",
      required: false,
      schema,
    })),
    responses: responses({ 200: { description: "A page", content: json(ref("PayoutPage")) } }, [400]),
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
    requestBody: { required: true, content: json(ref("UpdatePayout")) },
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

export const swaggerHtml = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Payouts API</title>
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: "/swagger/json", dom_id: "#swagger-ui" });</script>
</body>
</html>`;

/**
 * The OpenAPI document at /swagger/json, and Swagger UI's assets served from this program: the UI
 * at /swagger (see app.ts) needs no CDN and works offline.
 */
export const openapiDocs = new Elysia({ name: "openapi" })
  .use(
    openapi({
      path: "/swagger",
      specPath: "/swagger/json",
      provider: null,
      exclude: { paths: [/^\/swagger/, /^\/health/, /^\/metrics/] },
      documentation: {
        info: {
          title: "Payouts API",
          version: "1.0.0",
          description:
            "Payout requests, processed asynchronously. Errors are application/problem+json (RFC 9457). Amounts are decimal strings with two fraction digits.",
          // The package is private and ships under no open-source licence.
          license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
        },
        // Relative: the service that serves this document, wherever it is deployed.
        servers: [{ url: "/", description: "this service" }],
        // No authentication by design: the api runs behind one (an API gateway, mTLS, oauth2-proxy).
        security: [],
        tags: [
          { name: "payouts", description: "Payout requests" },
          { name: "events", description: "The audit trail: every change of every payout" },
        ],
        components: {
          schemas: {
            Payout,
            CreatePayout: CreatePayoutBody,
            UpdatePayout: UpdatePayoutBody,
            PayoutPage: {
              ...PayoutPage,
              properties: { ...PayoutPage.properties, results: { type: "array", items: ref("Payout") } },
            },
            Problem: ProblemSchema,
            PayoutEvent,
            EventPage,
            // biome-ignore lint/suspicious/noExplicitAny: TypeBox schemas are JSON Schema objects
          } as any,
        },
      },
    }),
  )
  .get("/swagger/assets/swagger-ui.css", () => new Response(Bun.file(css)), { detail: { hide: true } })
  .get("/swagger/assets/swagger-ui-bundle.js", () => new Response(Bun.file(bundle)), { detail: { hide: true } });
