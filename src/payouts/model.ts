import { type Static, type StaticDecode, Type } from "@sinclair/typebox";
import { COMMENT_MAX, CURRENCIES, IDEMPOTENCY_KEY_MAX, type PayoutRow, RECIPIENT_MAX, STATUSES } from "../db/schema";
import { Enum, Explain, Text, Timestamp, TrimmedText } from "../lib/kinds";
import { pageParams } from "../lib/lists";
import { AMOUNT_MAX, AMOUNT_MIN, Amount } from "./amount";

// The payout's vocabulary and limits, read by validation, the database schema and OpenAPI alike.
export type Currency = (typeof CURRENCIES)[number];
export type Status = (typeof STATUSES)[number];

export { CURRENCIES, IDEMPOTENCY_KEY_MAX, STATUSES };

const example = {
  id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10",
  amount: "1500.00",
  currency: "RUB",
  recipient_details: "40817810099910004312, BIC 044525225, Ivanov I.I.",
  comment: "October bonus",
  status: "NEW",
  failure_reason: null,
  created_at: "2026-11-26T10:15:30.123Z",
  updated_at: "2026-11-26T10:15:30.123Z",
  processed_at: null,
};

const amountDoc = `Decimal amount, ${AMOUNT_MIN} to ${AMOUNT_MAX}, at most two fraction digits. Sent as a JSON string ("10.5") or number (10.5); never stored or computed as a float.`;
const commentDoc = `At most ${COMMENT_MAX} characters, counted as Unicode code points (as PostgreSQL counts them).`;

const AmountIn = Amount(
  { min: AMOUNT_MIN, max: AMOUNT_MAX },
  {
    description: `${amountDoc} A JSON number is judged by the digits written: 10.005 and 1e2 are refused, not rounded.`,
    examples: ["1500.00", 10.5],
  },
);
const CurrencySchema = Enum(CURRENCIES, { description: "ISO 4217 code, exact and upper case." });
const StatusSchema = Enum(STATUSES);
const Recipient = TrimmedText({
  maxLength: RECIPIENT_MAX,
  description: `Where the money goes: 1 to ${RECIPIENT_MAX} characters after trimming (stored trimmed). No NUL or lone surrogate.`,
});
const Comment = Text({ maxLength: COMMENT_MAX, default: "", description: `${commentDoc} No NUL or lone surrogate.` });

export const Payout = Type.Object(
  {
    id: Type.String({ format: "uuid", description: "UUID v7, time-ordered, set by the server." }),
    amount: Type.String({ pattern: "^\\d+\\.\\d{2}$", description: "Always two fraction digits." }),
    currency: CurrencySchema,
    recipient_details: Type.String(),
    comment: Type.String(),
    status: StatusSchema,
    failure_reason: Type.Union([Type.String(), Type.Null()], { description: "Set when the status becomes FAILED." }),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
    processed_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()], {
      description: "Set when processing ends (COMPLETED or FAILED).",
    }),
  },
  { examples: [example] },
);
export type Payout = Static<typeof Payout>;

// The requests: one schema for each body, query and path parameter. Validation (validation.ts),
// the OpenAPI document (http/openapi.ts) and the types below all read these.

export const CreatePayoutBody = Type.Object(
  {
    amount: AmountIn,
    currency: CurrencySchema,
    recipient_details: Recipient,
    comment: Type.Optional(Comment),
  },
  {
    additionalProperties: false,
    description: "Unknown and read-only fields (id, status, ...) are refused with 400.",
    examples: [
      { amount: "1500.00", currency: "RUB", recipient_details: example.recipient_details, comment: "October bonus" },
    ],
  },
);
export type CreatePayoutInput = Required<StaticDecode<typeof CreatePayoutBody>>;

const isStatus = (value: unknown) => (STATUSES as readonly unknown[]).includes(value);

export const UpdatePayoutBody = Type.Object(
  {
    amount: Type.Optional(AmountIn),
    currency: Type.Optional(CurrencySchema),
    recipient_details: Type.Optional(Recipient),
    comment: Type.Optional(Comment),
    status: Type.Optional(
      Enum(["CANCELLED"] as const, {
        description: "A client may only cancel, and only while the payout is NEW.",
        [Explain]: (value: unknown) =>
          isStatus(value) ? "can only be set to CANCELLED; processing sets the other statuses" : undefined,
      }),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description:
      "Any subset of the fields. amount, currency, recipient_details and status change only while the payout is NEW; comment changes in any status.",
    examples: [{ status: "CANCELLED" }, { comment: "November bonus" }],
  },
);
export type UpdatePayoutInput = StaticDecode<typeof UpdatePayoutBody>;

export const ListQueryParams = Type.Object(
  {
    ...pageParams,
    status: Type.Optional(StatusSchema),
    currency: Type.Optional(CurrencySchema),
    created_after: Type.Optional(
      Timestamp({ description: "RFC 3339, years 0001 to 9999 UTC; payouts created at or after it." }),
    ),
    created_before: Type.Optional(
      Timestamp({ description: "RFC 3339, years 0001 to 9999 UTC; payouts created strictly before it." }),
    ),
  },
  { additionalProperties: false },
);

export const PayoutIdParam = Type.Object({
  id: Type.String({ description: "The payout's id (a UUID). Any other value names no payout: 404." }),
});

export const IdempotencyKey = Type.String({
  minLength: 1,
  maxLength: IDEMPOTENCY_KEY_MAX,
  pattern: "^[\\x21-\\x7E]+$",
  description: `1 to ${IDEMPOTENCY_KEY_MAX} visible ASCII characters; see the IETF draft "The Idempotency-Key HTTP Header Field". A key is kept for IDEMPOTENCY_KEY_TTL_MS (7 days by default, at least 24 hours): within that time a retry replays the first response; after it the key is expired and creates a new payout.`,
});

export const PayoutPage = Type.Object({
  results: Type.Array(Payout),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: "null on the last page." }),
});

/** The problem+json members a payout's errors add: status_conflict's and create_outcome_unknown's. */
export const PayoutProblemFields = {
  current_status: Type.Optional(Enum(STATUSES, { description: "With status_conflict: the payout's status." })),
  payout_id: Type.Optional(
    Type.String({
      format: "uuid",
      description:
        "With create_outcome_unknown for a create without an Idempotency-Key: the payout to look up once Retry-After has passed. A keyed create's answers never carry it: its key decides.",
    }),
  ),
};
/** A payout's row as the API shows it (payout_json in src/db/sql/payout-json.sql is its SQL twin). */
export function toPayout(row: PayoutRow): Payout {
  return {
    id: row.id,
    amount: row.amount,
    currency: row.currency,
    recipient_details: row.recipientDetails,
    comment: row.comment,
    status: row.status,
    failure_reason: row.failureReason,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    processed_at: row.processedAt?.toISOString() ?? null,
  };
}
