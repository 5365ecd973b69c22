import { type Static, Type } from "@sinclair/typebox";

// The payout's vocabulary and limits, read by validation, the database schema and OpenAPI alike.
export const CURRENCIES = ["RUB", "USD", "EUR"] as const;
export const STATUSES = ["NEW", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"] as const;
export type Currency = (typeof CURRENCIES)[number];
export type Status = (typeof STATUSES)[number];

export const AMOUNT_MIN = "0.01";
export const AMOUNT_MAX = "9999999999.99";
export const RECIPIENT_MAX = 255;
export const COMMENT_MAX = 1000;
export const IDEMPOTENCY_KEY_MAX = 255;
export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 200;

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

const AmountIn = Type.Union([Type.String({ pattern: "^\\d{1,10}(\\.\\d{1,2})?$" }), Type.Number()], {
  description: amountDoc,
  examples: ["1500.00", 10.5],
});
const CurrencySchema = Type.Union(
  CURRENCIES.map((c) => Type.Literal(c)),
  { description: "ISO 4217 code, exact and upper case." },
);
const StatusSchema = Type.Union(STATUSES.map((s) => Type.Literal(s)));
const Recipient = Type.String({
  minLength: 1,
  maxLength: RECIPIENT_MAX,
  description: `Where the money goes: 1 to ${RECIPIENT_MAX} characters after trimming.`,
});
const Comment = Type.String({ maxLength: COMMENT_MAX, description: commentDoc });

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

export const UpdatePayoutBody = Type.Object(
  {
    amount: Type.Optional(AmountIn),
    currency: Type.Optional(CurrencySchema),
    recipient_details: Type.Optional(Recipient),
    comment: Type.Optional(Comment),
    status: Type.Optional(
      Type.Literal("CANCELLED", { description: "A client may only cancel, and only while the payout is NEW." }),
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

export type CreatePayoutInput = {
  amount: string;
  currency: Currency;
  recipient_details: string;
  comment: string;
};
export type UpdatePayoutInput = Partial<CreatePayoutInput> & { status?: "CANCELLED" };

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: PAGE_LIMIT_MAX, default: PAGE_LIMIT_DEFAULT, description: "Page size." }),
    ),
    cursor: Type.Optional(Type.String({ description: "Opaque: the next_cursor of the previous page." })),
    status: Type.Optional(StatusSchema),
    currency: Type.Optional(CurrencySchema),
    created_after: Type.Optional(
      Type.String({ format: "date-time", description: "RFC 3339; payouts created at or after it." }),
    ),
    created_before: Type.Optional(
      Type.String({ format: "date-time", description: "RFC 3339; payouts created strictly before it." }),
    ),
  },
  { additionalProperties: false },
);

export const PayoutPage = Type.Object({
  results: Type.Array(Payout),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: "null on the last page." }),
});

export const Problem = Type.Object(
  {
    type: Type.String({ examples: ["about:blank"] }),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({
      description:
        "Stable machine-readable code: validation_error, invalid_json, not_found, method_not_allowed, status_conflict, payload_too_large, unsupported_media_type, idempotency_key_reused, database_unavailable, create_outcome_unknown, internal_error.",
    }),
    detail: Type.Optional(Type.String()),
    current_status: Type.Optional(StatusSchema),
    payout_id: Type.Optional(
      Type.String({
        format: "uuid",
        description: "With create_outcome_unknown: the payout to look up once Retry-After has passed.",
      }),
    ),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  {
    description: "RFC 9457 problem details, served as application/problem+json.",
    examples: [
      {
        type: "about:blank",
        title: "Validation failed",
        status: 400,
        code: "validation_error",
        detail: "2 fields are invalid",
        errors: [
          { field: "amount", message: "must be at least 0.01" },
          { field: "currency", message: "must be one of RUB, USD, EUR" },
        ],
      },
      {
        type: "about:blank",
        title: "Status forbids the change",
        status: 409,
        code: "status_conflict",
        detail: "the payout is COMPLETED: only a NEW payout can be cancelled",
        current_status: "COMPLETED",
      },
    ],
  },
);
