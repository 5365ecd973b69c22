import { type Static, type StaticDecode, Type } from "@sinclair/typebox";
import { DELIVERY_STATUSES, DESCRIPTION_MAX, URL_MAX } from "../db/schema";
import { EventTypeSchema } from "../events/model";
import { Enum, Text } from "../lib/kinds";
import { pageParams } from "../lib/lists";

export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

const timestamp = (description?: string) =>
  Type.String({ format: "date-time", ...(description ? { description } : {}) });

export const WebhookEndpoint = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    url: Type.String({ format: "uri" }),
    event_types: Type.Array(EventTypeSchema),
    description: Type.String(),
    enabled: Type.Boolean(),
    disabled_reason: Type.Union([Type.String(), Type.Null()], {
      description:
        "Why the endpoint was disabled (by a client, or after WEBHOOK_DISABLE_AFTER failed deliveries in a row).",
    }),
    created_at: timestamp(),
    created_by: Type.String({
      description: "The id of the API key that created it (anonymous: made before API keys existed).",
    }),
    updated_at: timestamp(),
    updated_by: Type.String({
      description:
        "Who changed it last: an API key's id, or system (the service disabling it after failed deliveries). The creator until then.",
    }),
  },
  {
    description: "A receiver of events. Its secret is shown only by create and rotate-secret.",
    examples: [
      {
        id: "0193b6c2-8b20-7c3a-9a51-2f0c8e6d4b12",
        url: "https://erp.example.com/hooks/payouts",
        event_types: ["payout.completed", "payout.failed"],
        description: "ERP",
        enabled: true,
        disabled_reason: null,
        created_at: "2026-11-26T10:00:00.000Z",
        created_by: "0193b6c2-1a00-7c3a-9a51-2f0c8e6d4b01",
        updated_at: "2026-11-26T10:00:00.000Z",
        updated_by: "0193b6c2-1a00-7c3a-9a51-2f0c8e6d4b01",
      },
    ],
  },
);
export type WebhookEndpoint = Static<typeof WebhookEndpoint>;

const Secret = Type.String({
  pattern: "^whsec_[A-Za-z0-9+/]{43}=$",
  description:
    "whsec_ + base64 of 32 random bytes: the Standard Webhooks signing secret. Shown only here; store it now.",
});

export const CreatedWebhookEndpoint = Type.Composite([WebhookEndpoint, Type.Object({ secret: Secret })]);
export const RotatedSecret = Type.Object({ secret: Secret });

const UrlIn = Text({
  maxLength: URL_MAX,
  format: "uri",
  description: `https (http only where the service allows it: WEBHOOK_ALLOW_HTTP=true, for development), at most ${URL_MAX} characters, no user information. Loopback, private, link-local, unique-local and unspecified addresses (also as what a host name resolves to) are refused unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true.`,
});
const EventTypesIn = Type.Array(EventTypeSchema, {
  minItems: 1,
  uniqueItems: true,
  description: "Distinct event types; all of them by default.",
});
const DescriptionIn = Text({
  maxLength: DESCRIPTION_MAX,
  default: "",
  description: `At most ${DESCRIPTION_MAX} characters.`,
});
const EnabledIn = Type.Boolean({ description: "true clears disabled_reason and the count of failed deliveries." });

export const CreateWebhookEndpointBody = Type.Object(
  {
    url: UrlIn,
    event_types: Type.Optional(EventTypesIn),
    description: Type.Optional(DescriptionIn),
    enabled: Type.Optional(EnabledIn),
  },
  {
    additionalProperties: false,
    examples: [{ url: "https://erp.example.com/hooks/payouts", event_types: ["payout.completed", "payout.failed"] }],
  },
);
export type CreateWebhookEndpointInput = StaticDecode<typeof CreateWebhookEndpointBody>;

export const UpdateWebhookEndpointBody = Type.Object(
  {
    url: Type.Optional(UrlIn),
    event_types: Type.Optional(EventTypesIn),
    description: Type.Optional(DescriptionIn),
    enabled: Type.Optional(EnabledIn),
  },
  { additionalProperties: false, minProperties: 1, examples: [{ enabled: true }] },
);
export type UpdateWebhookEndpointInput = StaticDecode<typeof UpdateWebhookEndpointBody>;

export const WebhookDelivery = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    event_id: Type.String({ format: "uuid", description: "Also the webhook-id header of every attempt." }),
    event_type: EventTypeSchema,
    status: Enum(DELIVERY_STATUSES),
    attempts: Type.Integer({ minimum: 0, description: "Attempts started so far." }),
    last_attempt_at: Type.Union([timestamp(), Type.Null()]),
    next_attempt_at: Type.Union([timestamp(), Type.Null()], {
      description: "When the next attempt may start; null once the delivery succeeded or failed.",
    }),
    last_response_status: Type.Union([Type.Integer(), Type.Null()], {
      description: "The receiver's HTTP status of the last attempt; null when it gave none.",
    }),
    last_error: Type.Union([Type.String(), Type.Null()], {
      description: "Why the last attempt failed: HTTP 503, a timeout, a refused connection or address.",
    }),
  },
  {
    examples: [
      {
        id: "0193b6c2-9c30-7c3a-9a51-2f0c8e6d4b13",
        event_id: "0193b6c2-7a10-7c3a-9a51-2f0c8e6d4b11",
        event_type: "payout.completed",
        status: "pending",
        attempts: 2,
        last_attempt_at: "2026-11-26T10:15:36.101Z",
        next_attempt_at: "2026-11-26T10:15:46.101Z",
        last_response_status: 503,
        last_error: "HTTP 503",
      },
    ],
  },
);
export type WebhookDelivery = Static<typeof WebhookDelivery>;

const ref = (name: string) => Type.Unsafe({ $ref: `#/components/schemas/${name}` });
const pageOf = (item: string) =>
  Type.Object({
    results: Type.Array(ref(item)),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: "null on the last page." }),
  });
export const WebhookEndpointPage = pageOf("WebhookEndpoint");
export const WebhookDeliveryPage = pageOf("WebhookDelivery");

export const DeliveryListQueryParams = Type.Object(
  { ...pageParams, status: Type.Optional(Enum(DELIVERY_STATUSES)) },
  { additionalProperties: false },
);

export const EndpointIdParam = Type.Object({
  endpoint_id: Type.String({ description: "The endpoint's id (a UUID); any other value is a 404." }),
});
export const DeliveryParams = Type.Object({
  endpoint_id: Type.String({ description: "The endpoint's id (a UUID)." }),
  delivery_id: Type.String({ description: "The delivery's id (a UUID); any other value is a 404." }),
});
