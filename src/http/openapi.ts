import { openapi } from "@elysiajs/openapi";
import { type Static, Type } from "@sinclair/typebox";
import { type DocumentDecoration, Elysia } from "elysia";
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import { EventPage, PayoutEvent } from "../events/model";
import { Enum } from "../lib/kinds";
import {
  CreatePayoutBody,
  IdempotencyKey,
  ListQueryParams,
  Payout,
  PayoutPage,
  UpdatePayoutBody,
} from "../payouts/model";
import {
  CreatedWebhookEndpoint,
  CreateWebhookEndpointBody,
  RotatedSecret,
  UpdateWebhookEndpointBody,
  WebhookDelivery,
  WebhookDeliveryPage,
  WebhookEndpoint,
  WebhookEndpointPage,
} from "../webhooks/model";
import { ProblemSchema, RETRY_WITH_KEY } from "./problem";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });
const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

const problem = (status: number, code: string, title: string, detail: string, extra: object = {}) => ({
  type: "about:blank",
  title,
  status,
  code,
  detail,
  ...extra,
});

type Examples = Record<string, { summary: string; value: object }>;

// What each error status means here, with bodies as the server writes them.
const problems: Record<number, { description: string; examples: Examples; headers?: Record<string, object> }> = {
  400: {
    description: "Invalid JSON, fields, query parameters or Idempotency-Key",
    examples: {
      validation_error: {
        summary: "Invalid fields",
        value: problem(400, "validation_error", "Validation failed", "2 fields are invalid", {
          errors: [
            { field: "amount", message: "must be at least 0.01" },
            { field: "currency", message: "must be one of RUB, USD, EUR" },
          ],
        }),
      },
      invalid_json: {
        summary: "A repeated key",
        value: problem(400, "invalid_json", "Invalid JSON", 'the body is ambiguous: the key "amount" appears twice'),
      },
    },
  },
  401: {
    description:
      "No valid API key: missing, malformed, unknown, wrong, expired or revoked, all answered alike (WWW-Authenticate: Bearer)",
    headers: {
      "WWW-Authenticate": {
        required: true,
        description: "The scheme to authenticate with",
        schema: { type: "string", enum: ['Bearer realm="payouts"'] },
      },
    },
    examples: {
      unauthorized: {
        summary: "No valid API key",
        value: problem(401, "unauthorized", "Unauthorized", "a valid API key is required: Authorization: Bearer <key>"),
      },
    },
  },
  403: {
    description: "The API key lacks the scope the operation needs; scope names it",
    examples: {
      missing_scope: {
        summary: "Missing scope",
        value: problem(
          403,
          "missing_scope",
          "Missing scope",
          "the API key lacks the scope payouts:write: this request needs it",
          { scope: "payouts:write" },
        ),
      },
    },
  },
  404: {
    description: "No such payout (also for an id that is not a UUID)",
    examples: {
      not_found: { summary: "No such payout", value: problem(404, "not_found", "Not found", "no such payout") },
    },
  },
  409: {
    description: "The payout's status forbids the change; current_status names it",
    examples: {
      status_conflict: {
        summary: "Too late to cancel",
        value: problem(
          409,
          "status_conflict",
          "Status forbids the change",
          "the payout is COMPLETED: only a NEW payout can be cancelled",
          { current_status: "COMPLETED" },
        ),
      },
    },
  },
  413: {
    description: "Body over 64 KiB",
    examples: {
      payload_too_large: {
        summary: "Too large",
        value: problem(413, "payload_too_large", "Payload too large", "the body must be at most 65536 bytes"),
      },
    },
  },
  415: {
    description: "Body that is not application/json, or not UTF-8",
    examples: {
      unsupported_media_type: {
        summary: "Not JSON",
        value: problem(415, "unsupported_media_type", "Unsupported media type", "the body must be application/json"),
      },
    },
  },
  422: {
    description: "Idempotency-Key reused with a different body; nothing was created",
    examples: {
      idempotency_key_reused: {
        summary: "Another body under the same key",
        value: problem(
          422,
          "idempotency_key_reused",
          "Idempotency key reused",
          "this Idempotency-Key was first used with a different request body; nothing was created",
        ),
      },
    },
  },
  500: {
    description: "A bug: a generic body",
    examples: {
      internal_error: {
        summary: "A bug",
        value: problem(500, "internal_error", "Internal server error", "an unexpected error occurred"),
      },
    },
  },
  503: {
    description: "The database is unreachable, too slow, or its schema is not current yet (Retry-After)",
    headers: { "Retry-After": header("Retry-After") },
    examples: {
      database_unavailable: {
        summary: "Database unreachable",
        value: problem(503, "database_unavailable", "Service unavailable", "the database cannot be reached; try again"),
      },
    },
  },
  504: {
    description:
      "create_outcome_unknown: the database could not confirm whether the payout was stored. Without an Idempotency-Key, payout_id and Location name it; after Retry-After, GET it: 404 means it was not created and never will be. With an Idempotency-Key, neither is given: retry with the same key, which returns the key's payout if one was created, or creates it once",
    headers: {
      "Retry-After": header("Retry-After"),
      Location: {
        description: "Without an Idempotency-Key: the payout to look up",
        schema: { type: "string" },
      },
    },
    examples: {
      create_outcome_unknown: {
        summary: "Outcome unknown",
        value: problem(
          504,
          "create_outcome_unknown",
          "Outcome unknown",
          "the database did not confirm whether payout 0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10 was stored; after 5 s, GET /api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/ tells: 404 means it was not created and will not be, 200 means it was. Do not repeat the request without an Idempotency-Key until then.",
          { payout_id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10" },
        ),
      },
      create_outcome_unknown_keyed: {
        summary: "Outcome unknown, with an Idempotency-Key",
        value: problem(
          504,
          "create_outcome_unknown",
          "Outcome unknown",
          `the database did not confirm whether the payout was created; ${RETRY_WITH_KEY}`,
        ),
      },
    },
  },
};

// A create's 503: what it means for the payout, keyed or not.
const create503 = {
  description:
    "Nothing was created by this request (Retry-After). Without an Idempotency-Key the request may be sent again. With one, an earlier request with the same key may have created the payout: retry with the same Idempotency-Key, which returns that payout (Idempotent-Replayed) or creates it once; never with another key",
  headers: { "Retry-After": header("Retry-After") },
  examples: {
    database_unavailable: (problems[503] as { examples: Examples }).examples.database_unavailable as Examples[string],
    keyed: {
      summary: "With an Idempotency-Key",
      value: problem(
        503,
        "database_unavailable",
        "Service unavailable",
        `this request created nothing, but an earlier one with this Idempotency-Key may have; ${RETRY_WITH_KEY}`,
      ),
    },
  },
};

const problemContent = (examples: Examples) => ({ "application/problem+json": { schema: ref("Problem"), examples } });

/**
 * OpenAPI responses: the success ones given, plus the problem+json ones by status (503 and 500 on
 * every operation). `examples400` replaces the generic 400 examples where the operation has its own.
 */
export function responses(success: Record<number, object>, errors: number[], examples400?: Examples) {
  const out: Record<string, object> = { ...success };
  for (const status of [...errors, 500, 503]) {
    const { description, examples, headers } = problems[status] as (typeof problems)[number];
    out[status] = {
      description,
      ...(headers ? { headers } : {}),
      content: problemContent(status === 400 && examples400 ? examples400 : examples),
    };
  }
  return out;
}

/** OpenAPI query parameters from a query schema: the same schema validation reads. */
export const queryParameters = (schema: { properties: Record<string, object> }) =>
  Object.entries(schema.properties).map(([name, property]) => ({
    name,
    in: "query",
    required: false,
    schema: property,
  }));

/**
 * Where a route with a path parameter gives its query parameters: the OpenAPI plugin replaces
 * the `parameters` of such a route with the path parameters it makes, so completeDocument adds
 * these back.
 */
export const QUERY_PARAMETERS = "x-query-parameters";

export const payoutResponse = (description: string, headers?: object) => ({
  description,
  content: json(ref("Payout")),
  ...(headers ? { headers } : {}),
});

const listQuery400: Examples = {
  validation_error: {
    summary: "Invalid query parameters",
    value: problem(400, "validation_error", "Validation failed", "2 query parameters are invalid", {
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

const HealthLive = Type.Object({ status: Enum(["ok"] as const) });
const HealthReady = Type.Object({
  status: Enum(["ready", "unavailable"] as const),
  database: Enum(["up", "down", "schema behind"] as const, {
    description: "up: it answers and holds every migration of this build",
  }),
  broker: Enum(["up", "down"] as const, {
    description: "Reported only: payouts are accepted while the broker is down",
  }),
});
export type HealthReady = Static<typeof HealthReady>;

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
          ...(problems[400] as { examples: Examples }).examples,
          idempotency_key: {
            summary: "An invalid Idempotency-Key",
            value: problem(400, "validation_error", "Validation failed", "1 header is invalid", {
              errors: [{ field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters" }],
            }),
          },
        },
      ),
      503: {
        description: create503.description,
        headers: create503.headers,
        content: problemContent(create503.examples),
      },
    },
  },
  list: {
    tags: ["payouts"],
    summary: "List payout requests, newest first",
    description:
      "Keyset (cursor) pagination: pass next_cursor as cursor for the next page; every page costs the same however deep. Unknown or repeated query parameters are a 400.",
    parameters: queryParameters(ListQueryParams),
    responses: responses({ 200: { description: "A page", content: json(ref("PayoutPage")) } }, [400], listQuery400),
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
  live: {
    tags: ["health"],
    summary: "Liveness: the process runs",
    responses: { 200: { description: "Alive", content: json(HealthLive) } },
  },
  ready: {
    tags: ["health"],
    summary: "Readiness: the database answers and holds this build's schema",
    description:
      "The broker's state is reported but does not make the api unready: payouts are accepted while it is down.",
    responses: {
      200: { description: "Ready", content: json(HealthReady) },
      503: { description: "Not ready: the database is down or its schema is behind", content: json(HealthReady) },
    },
  },
  // TypeBox schemas are JSON Schema objects, wider than openapi-types' static types.
} as unknown as Record<"create" | "list" | "get" | "update" | "remove" | "live" | "ready", DocumentDecoration>;

const METHODS = ["get", "put", "post", "patch", "delete", "options", "trace"] as const;

/**
 * What holds for every operation, written once: each response carries X-Request-Id, each request
 * may send one, and each method a path does not take is a 405 naming the ones it does (the server
 * derives its Allow header from the same routes the document is generated from).
 */
function completeDocument(generated: Record<string, unknown>) {
  const doc = structuredClone(generated) as { paths: Record<string, Record<string, Operation>> };
  for (const [path, item] of Object.entries(doc.paths)) {
    const allowed = METHODS.filter((method) => item[method]);
    const allow = allowed.map((method) => method.toUpperCase()).join(", ");
    const first = item[allowed[0] as string] as Operation;
    const pathParameters = (first.parameters ?? []).filter((p) => (p as { in?: string }).in === "path");
    for (const method of METHODS.filter((m) => !item[m])) {
      item[method] = {
        tags: first.tags,
        summary: `Not allowed: ${allow} only`,
        ...(pathParameters.length > 0 ? { parameters: pathParameters } : {}),
        operationId: `${method}${path.replace(/[^a-z]+/gi, "_")}not_allowed`,
        responses: {
          405: {
            description: "Method not allowed on this path",
            headers: {
              Allow: {
                required: true,
                description: "The methods this path takes",
                schema: { type: "string", enum: [allow] },
              },
            },
            content: problemContent({
              method_not_allowed: {
                summary: "Method not allowed",
                value: problem(
                  405,
                  "method_not_allowed",
                  "Method not allowed",
                  `${method.toUpperCase()} is not allowed here; use ${allow}`,
                ),
              },
            }),
          },
        },
      };
    }
    for (const method of METHODS) {
      const operation = item[method] as Operation;
      const query = (operation[QUERY_PARAMETERS] ?? []) as object[];
      delete operation[QUERY_PARAMETERS];
      operation.parameters = [
        ...(operation.parameters ?? []),
        ...query,
        { $ref: "#/components/parameters/X-Request-Id" },
      ];
      for (const response of Object.values(operation.responses)) {
        response.headers = { "X-Request-Id": header("X-Request-Id"), ...response.headers };
      }
    }
  }
  return doc;
}

type Operation = {
  tags?: string[];
  parameters?: object[];
  responses: Record<string, { description?: string; headers?: Record<string, object>; content?: object }>;
  [field: string]: unknown;
};

const REQUEST_ID_SCHEMA = { type: "string" as const, minLength: 1, maxLength: 128, pattern: "^[\\x21-\\x7E]+$" };

const signedHeader = (name: string, description: string, schema: object) => ({
  name,
  in: "header",
  required: true,
  description,
  schema,
});

/** The request this service sends to a webhook endpoint (an OpenAPI 3.1 `webhooks` entry). */
const webhookRequest = {
  operationId: "receivePayoutEvent",
  tags: ["webhooks"],
  summary: "An event, delivered to a webhook endpoint",
  description:
    "One POST per attempt, per Standard Webhooks (standardwebhooks.com): a receiver using the standardwebhooks or svix libraries verifies it unchanged. Any 2xx within WEBHOOK_TIMEOUT_MS is success; anything else (another status, redirects included, a timeout, a refused connection) is retried after WEBHOOK_RETRY_BASE_DELAY_MS, doubling, at most 10 hours apart, up to WEBHOOK_MAX_ATTEMPTS attempts. Delivery is at least once and unordered: deduplicate by webhook-id, order by the event's created_at.",
  parameters: [
    signedHeader("webhook-id", "The event's id: the same on every attempt.", { type: "string", format: "uuid" }),
    signedHeader("webhook-timestamp", "Unix seconds of this attempt.", { type: "string", pattern: "^\\d+$" }),
    signedHeader(
      "webhook-signature",
      "v1, + base64 of HMAC-SHA256 over {webhook-id}.{webhook-timestamp}.{body}, keyed with the base64-decoded part of the secret after whsec_. During WEBHOOK_SECRET_OVERLAP_MS after a rotation, two signatures separated by a space: the new secret's and the previous one's.",
      { type: "string", pattern: "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)?$" },
    ),
  ],
  requestBody: { required: true, content: json(ref("PayoutEvent")) },
  responses: {
    "2XX": { description: "Delivered" },
    default: { description: "Not delivered: the attempt is retried" },
  },
};

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
const completed = new WeakMap<object, object>();

export const openapiDocs = new Elysia({ name: "openapi" })
  .onAfterHandle(({ path, responseValue }) => {
    if (!/^\/swagger\/json\/?$/.test(path) || typeof responseValue !== "object" || responseValue === null) return;
    let doc = completed.get(responseValue);
    if (!doc) {
      doc = completeDocument(responseValue as Record<string, unknown>);
      completed.set(responseValue, doc);
    }
    return doc;
  })
  .use(
    openapi({
      path: "/swagger",
      specPath: "/swagger/json",
      provider: null,
      exclude: { paths: [/^\/swagger/, /^\/metrics/] },
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
          { name: "health", description: "Probes for the orchestrator" },
          { name: "webhooks", description: "Endpoints that receive events, signed per Standard Webhooks" },
        ],
        webhooks: { "payout-event": { post: webhookRequest } },
        components: {
          headers: {
            "X-Request-Id": {
              required: true,
              description:
                "The request's id: the client's X-Request-Id when valid, else a new UUID. On every response.",
              schema: REQUEST_ID_SCHEMA,
            },
            "Retry-After": {
              required: true,
              description: "Seconds to wait before trying again",
              schema: { type: "integer", minimum: 1 },
            },
          },
          parameters: {
            "X-Request-Id": {
              name: "X-Request-Id",
              in: "header",
              required: false,
              description:
                "An id for this request, echoed on the response and written in the logs; an invalid one is replaced.",
              schema: { type: "string" },
            },
          },
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
            WebhookEndpoint,
            CreatedWebhookEndpoint,
            CreateWebhookEndpoint: CreateWebhookEndpointBody,
            UpdateWebhookEndpoint: UpdateWebhookEndpointBody,
            RotatedSecret,
            WebhookDelivery,
            WebhookEndpointPage,
            WebhookDeliveryPage,
            // biome-ignore lint/suspicious/noExplicitAny: TypeBox schemas are JSON Schema objects
          } as any,
        },
      },
    }),
  )
  .get("/swagger/assets/swagger-ui.css", () => new Response(Bun.file(css)), { detail: { hide: true } })
  .get("/swagger/assets/swagger-ui-bundle.js", () => new Response(Bun.file(bundle)), { detail: { hide: true } });
