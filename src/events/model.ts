import { type Static, Type } from "@sinclair/typebox";
import { EVENT_TYPES } from "../db/schema";
import { Enum, Timestamp, Uuid } from "../lib/kinds";
import { PageQueryParams, pageParams } from "../lib/lists";
import type { Payout } from "../payouts/model";

export { EVENT_TYPES };
export type EventType = (typeof EVENT_TYPES)[number];

export const EventTypeSchema = Enum(EVENT_TYPES, {
  description:
    "payout.created: stored; payout.updated: amount, currency, recipient_details or comment changed; payout.cancelled: set CANCELLED; payout.processing: a worker claimed it (every claim, retries and takeovers included); payout.completed: the gateway paid it; payout.failed: it became FAILED; payout.deleted: DELETE removed it.",
});

export const PayoutEvent = Type.Object(
  {
    id: Type.String({
      format: "uuid",
      description: "UUID v7: events sort by their id as by their created_at. Also the webhook-id of its deliveries.",
    }),
    type: EventTypeSchema,
    payout_id: Type.String({ format: "uuid" }),
    attempt: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description:
        "payout.processing: the claim's attempt number; payout.completed: the attempt that paid; payout.failed: the last attempt; null for the other types.",
    }),
    created_at: Type.String({ format: "date-time" }),
    data: Type.Unsafe<Static<typeof Payout>>({
      $ref: "#/components/schemas/Payout",
      description: "The payout right after the change (for payout.deleted: right before it).",
    }),
    actor: Type.Union([Type.String(), Type.Null()], {
      description:
        'Who made the change: the id of the API key whose request made it (payout.created, payout.updated, payout.cancelled, payout.deleted), or "system" for the service itself (payout.processing, payout.completed, payout.failed: the worker and the relay). A revoked key\'s id still resolves (GET /api/keys/{id}/). null for events recorded before actors were (older than the upgrade that added them).',
      examples: ["system", "0193b6c2-1d00-7c3a-9a51-2f0c8e6d4b01"],
    }),
  },
  {
    description:
      "One change of a payout, appended by PostgreSQL in the change's own transaction; never updated or deleted, kept after the payout is deleted.",
    examples: [
      {
        id: "0193b6c2-7a10-7c3a-9a51-2f0c8e6d4b11",
        type: "payout.completed",
        payout_id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10",
        attempt: 1,
        created_at: "2026-11-26T10:15:31.001Z",
        data: {
          id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10",
          amount: "1500.00",
          currency: "RUB",
          recipient_details: "40817810099910004312, BIC 044525225, Ivanov I.I.",
          comment: "October bonus",
          status: "COMPLETED",
          failure_reason: null,
          created_at: "2026-11-26T10:15:30.123Z",
          updated_at: "2026-11-26T10:15:31.001Z",
          processed_at: "2026-11-26T10:15:31.001Z",
        },
        actor: "system",
      },
    ],
  },
);
export type PayoutEvent = Static<typeof PayoutEvent>;

export const EventPage = Type.Object({
  results: Type.Array(Type.Unsafe({ $ref: "#/components/schemas/PayoutEvent" })),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: "null on the last page." }),
});

export const EventListQueryParams = Type.Object(
  {
    ...pageParams,
    type: Type.Optional(EventTypeSchema),
    payout_id: Type.Optional(Uuid({ description: "Only this payout's events." })),
    created_after: Type.Optional(
      Timestamp({ description: "RFC 3339, years 0001 to 9999 UTC; events created at or after it." }),
    ),
    created_before: Type.Optional(
      Timestamp({ description: "RFC 3339, years 0001 to 9999 UTC; events created strictly before it." }),
    ),
  },
  { additionalProperties: false },
);

// The query of a list with no filters, read here by the routes that document one.
export { PageQueryParams };
