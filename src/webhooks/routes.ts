import { type DocumentDecoration, Elysia } from "elysia";
import { ValidationFailed } from "../errors";
import { PageQueryParams } from "../events/model";
import { readJsonBody } from "../http/body";
import { type FeatureDocs, QUERY_PARAMETERS, queryParameters } from "../http/openapi";
import { responses } from "../http/responses";
import { json, pathId } from "../http/route";
import { callerOf } from "../keys/auth";
import {
  CreatedWebhookEndpoint,
  CreateWebhookEndpointBody,
  DeliveryListQueryParams,
  DeliveryParams,
  EndpointIdParam,
  RotatedSecret,
  UpdateWebhookEndpointBody,
  WebhookDelivery,
  WebhookDeliveryPage,
  WebhookEndpoint,
  WebhookEndpointPage,
} from "./model";
import type { WebhookService } from "./service";
import {
  validateCreateEndpoint,
  validateDeliveryListQuery,
  validateEndpointListQuery,
  validateUpdateEndpoint,
} from "./validation";

const BASE = "/api/webhook-endpoints";

const content = (schema: string) => ({ "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } });

/** The shared responses, with a 404 that names what is missing. */
const answers = (success: Record<number, object>, errors: number[], missing = "webhook endpoint") => {
  const out = responses(success, errors) as Record<string, { description: string }>;
  if (out[404]) out[404] = { ...out[404], description: `No such ${missing} (also for an id that is not a UUID)` };
  return out;
};

const docs = {
  create: {
    tags: ["webhooks"],
    summary: "Create a webhook endpoint",
    description:
      "The response is the only one that shows the secret. Deliveries start with the next event; earlier events are not sent.",
    requestBody: { required: true, content: content("CreateWebhookEndpoint") },
    responses: answers(
      {
        201: {
          description: "Created, with its secret",
          content: content("CreatedWebhookEndpoint"),
          headers: { Location: { required: true, description: "The endpoint's URL", schema: { type: "string" } } },
        },
      },
      [400, 413, 415],
    ),
  },
  list: {
    tags: ["webhooks"],
    summary: "List webhook endpoints, newest first",
    description: "Keyset (cursor) pagination. Unknown or repeated query parameters are a 400.",
    parameters: queryParameters(PageQueryParams),
    responses: answers({ 200: { description: "A page", content: content("WebhookEndpointPage") } }, [400]),
  },
  get: {
    tags: ["webhooks"],
    summary: "Read a webhook endpoint (never its secret)",
    responses: answers({ 200: { description: "The endpoint", content: content("WebhookEndpoint") } }, [404]),
  },
  update: {
    tags: ["webhooks"],
    summary: "Change a webhook endpoint",
    description: "Any subset of url, event_types, description, enabled. enabled: true clears disabled_reason.",
    requestBody: { required: true, content: content("UpdateWebhookEndpoint") },
    responses: answers(
      { 200: { description: "The endpoint", content: content("WebhookEndpoint") } },
      [400, 404, 413, 415],
    ),
  },
  remove: {
    tags: ["webhooks"],
    summary: "Delete a webhook endpoint and its deliveries",
    description: "No delivery to it starts afterwards.",
    responses: answers({ 204: { description: "Deleted" } }, [404]),
  },
  rotate: {
    tags: ["webhooks"],
    summary: "Rotate the signing secret",
    description:
      "For WEBHOOK_SECRET_OVERLAP_MS (a day by default) deliveries carry two signatures, one with the new secret and one with the previous, so receivers can switch without losing one.",
    responses: answers({ 200: { description: "The new secret", content: content("RotatedSecret") } }, [404]),
  },
  deliveries: {
    tags: ["webhooks"],
    summary: "An endpoint's deliveries, newest first",
    description:
      "Keyset (cursor) pagination; filter status. A cursor carries its filter. Unknown or repeated query parameters are a 400.",
    [QUERY_PARAMETERS]: queryParameters(DeliveryListQueryParams),
    responses: answers({ 200: { description: "A page", content: content("WebhookDeliveryPage") } }, [400, 404]),
  },
  retry: {
    tags: ["webhooks"],
    summary: "Attempt a delivery again now",
    description:
      "Also for a failed (or succeeded) delivery. The attempt starts when a worker is free and the endpoint is enabled.",
    responses: answers(
      { 202: { description: "Scheduled", content: content("WebhookDelivery") } },
      [404],
      "webhook endpoint or delivery",
    ),
  },
  // TypeBox schemas are JSON Schema objects, wider than openapi-types' static types.
} as unknown as Record<
  "create" | "list" | "get" | "update" | "remove" | "rotate" | "deliveries" | "retry",
  DocumentDecoration
>;

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
  requestBody: { required: true, content: content("PayoutEvent") },
  responses: {
    "2XX": { description: "Delivered" },
    default: { description: "Not delivered: the attempt is retried" },
  },
};

/** What webhooks add to the document besides their operations: the request they send, too. */
export const webhooksDocument: FeatureDocs = {
  tags: [{ name: "webhooks", description: "Endpoints that receive events, signed per Standard Webhooks" }],
  webhooks: { "payout-event": { post: webhookRequest } },
  schemas: {
    WebhookEndpoint,
    CreatedWebhookEndpoint,
    CreateWebhookEndpoint: CreateWebhookEndpointBody,
    UpdateWebhookEndpoint: UpdateWebhookEndpointBody,
    RotatedSecret,
    WebhookDelivery,
    WebhookEndpointPage,
    WebhookDeliveryPage,
  },
};

const ENDPOINT = "webhook endpoint";

/** Webhook endpoints: managed here, delivered to by the worker (delivery.ts). */
export function webhookRoutes(service: WebhookService) {
  return new Elysia({ name: "webhooks" })
    .onParse(({ request }) => {
      // Only create and update take a body; the other POSTs (rotate, retry) read none.
      if (request.method === "PATCH" || new URL(request.url).pathname.replace(/\/$/, "") === BASE) {
        return readJsonBody(request);
      }
    })
    .post(
      `${BASE}/`,
      async ({ body, request }) => {
        const input = validateCreateEndpoint(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        const created = await service.create(input.value, callerOf(request).id);
        return json(created, 201, { location: `${BASE}/${created.id}/` });
      },
      { detail: docs.create },
    )
    .get(
      `${BASE}/`,
      async ({ request }) => {
        const query = validateEndpointListQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.list(query.value), 200);
      },
      { detail: docs.list },
    )
    .get(
      `${BASE}/:endpoint_id/`,
      async ({ params }) => json(await service.get(pathId(params.endpoint_id, ENDPOINT)), 200),
      {
        params: EndpointIdParam,
        detail: docs.get,
      },
    )
    .patch(
      `${BASE}/:endpoint_id/`,
      async ({ params, body, request }) => {
        const id = pathId(params.endpoint_id, ENDPOINT);
        const input = validateUpdateEndpoint(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        return json(await service.update(id, input.value, callerOf(request).id), 200);
      },
      { params: EndpointIdParam, detail: docs.update },
    )
    .delete(
      `${BASE}/:endpoint_id/`,
      async ({ params }) => {
        await service.remove(pathId(params.endpoint_id, ENDPOINT));
        return new Response(null, { status: 204 });
      },
      { params: EndpointIdParam, detail: docs.remove },
    )
    .post(
      `${BASE}/:endpoint_id/rotate-secret/`,
      async ({ params, request }) =>
        json(await service.rotateSecret(pathId(params.endpoint_id, ENDPOINT), callerOf(request).id), 200),
      { params: EndpointIdParam, detail: docs.rotate },
    )
    .get(
      `${BASE}/:endpoint_id/deliveries/`,
      async ({ params, request }) => {
        const id = pathId(params.endpoint_id, ENDPOINT);
        const query = validateDeliveryListQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.deliveries(id, query.value), 200);
      },
      { params: EndpointIdParam, detail: docs.deliveries },
    )
    .post(
      `${BASE}/:endpoint_id/deliveries/:delivery_id/retry/`,
      async ({ params }) =>
        json(await service.retry(pathId(params.endpoint_id, ENDPOINT), pathId(params.delivery_id, "delivery")), 202),
      { params: DeliveryParams, detail: docs.retry },
    );
}
