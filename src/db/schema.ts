import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  customType,
  index,
  integer,
  json,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from "drizzle-orm/pg-core";

// What the database persists is owned here: the values of its enumerations and the limits of its
// columns. The features' models read them (validation and the OpenAPI document state the same
// limits), as does the raw SQL that casts to these types; no column limit is written twice.

export const CURRENCIES = ["RUB", "USD", "EUR"] as const;
export const STATUSES = ["NEW", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"] as const;
/** What can happen to a payout; each change appends one event of one of these types. */
export const EVENT_TYPES = [
  "payout.created",
  "payout.updated",
  "payout.cancelled",
  "payout.processing",
  "payout.completed",
  "payout.failed",
  "payout.deleted",
] as const;
export const DELIVERY_STATUSES = ["pending", "succeeded", "failed"] as const;

/** An amount's column: numeric(12, 2), ten whole digits and two fraction digits. */
export const AMOUNT_PRECISION = 12;
export const AMOUNT_SCALE = 2;
/** The amount column's type, for raw SQL that casts to it. */
export const AMOUNT_TYPE = `numeric(${AMOUNT_PRECISION}, ${AMOUNT_SCALE})`;
export const RECIPIENT_MAX = 255;
export const COMMENT_MAX = 1000;
export const IDEMPOTENCY_KEY_MAX = 255;
/** The simulated gateway's payment key (the payout's id, or a test's own). */
export const PAYMENT_KEY_MAX = 255;
export const URL_MAX = 2048;
export const DESCRIPTION_MAX = 255;
/** An API key's name. */
export const NAME_MAX = 255;

export const currencyEnum = pgEnum("currency", CURRENCIES);
export const payoutStatusEnum = pgEnum("payout_status", STATUSES);
export const eventTypeEnum = pgEnum("payout_event_type", EVENT_TYPES);
export const deliveryStatusEnum = pgEnum("webhook_delivery_status", DELIVERY_STATUSES);

// Millisecond precision: what the API shows is exactly what is stored, so a cursor built from a
// response finds its row again.
const instant = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: "date" });

export const payouts = pgTable(
  "payouts",
  {
    id: uuid("id").primaryKey(),
    amount: numeric("amount", { precision: AMOUNT_PRECISION, scale: AMOUNT_SCALE }).notNull(),
    currency: currencyEnum("currency").notNull(),
    recipientDetails: varchar("recipient_details", { length: RECIPIENT_MAX }).notNull(),
    comment: varchar("comment", { length: COMMENT_MAX }).notNull().default(""),
    status: payoutStatusEnum("status").notNull().default("NEW"),
    failureReason: text("failure_reason"),
    /** Gateway attempts so far; counted when a worker claims the payout. */
    attempts: smallint("attempts").notNull().default(0),
    /** When a worker last claimed it: only workers write this, so a client's edit cannot make a
     * lost PROCESSING payout look alive to the relay. */
    claimedAt: instant("claimed_at"),
    /** When the relay last published it again (its message lost, or its holder gone); NULL when
     * its first message, from the outbox, is all it has needed. */
    publishedAt: instant("published_at"),
    createdAt: instant("created_at").notNull().defaultNow(),
    updatedAt: instant("updated_at").notNull().defaultNow(),
    processedAt: instant("processed_at"),
    /** The API key that created it, which its payout.created event names as its actor; NULL for
     * payouts stored before drizzle/0013 and for rows written outside the api (psql). */
    createdBy: text("created_by"),
  },
  (t) => [
    check("payouts_amount_positive", sql`${t.amount} >= 0.01`),
    check("payouts_recipient_not_blank", sql`btrim(${t.recipientDetails}) <> ''`),
    check(
      "payouts_processed_at_iff_final",
      sql`(${t.processedAt} IS NOT NULL) = (${t.status} IN ('COMPLETED', 'FAILED'))`,
    ),
    check("payouts_failure_reason_iff_failed", sql`(${t.failureReason} IS NOT NULL) = (${t.status} = 'FAILED')`),
    // Keyset pagination, newest first (a backward scan), unfiltered and by each filter. The relay
    // finds lost NEW and PROCESSING payouts through the status index.
    index("payouts_created_idx").on(t.createdAt, t.id),
    index("payouts_status_created_idx").on(t.status, t.createdAt, t.id),
    index("payouts_currency_created_idx").on(t.currency, t.createdAt, t.id),
  ],
);

/**
 * The outbox: a row for each payout whose id the broker has not confirmed yet. The payouts INSERT
 * trigger writes it in the payout's own transaction, whoever inserts (src/db/sql/outbox.sql);
 * the hand-off deletes it once the broker confirmed, and the relay publishes what is left. A row
 * is written once and deleted once: no payout row is updated to say it was published.
 */
export const payoutOutbox = pgTable("payout_outbox", {
  payoutId: uuid("payout_id").primaryKey(),
  createdAt: instant("created_at").notNull().defaultNow(),
});

/**
 * One row per Idempotency-Key accepted within IDEMPOTENCY_KEY_TTL_MS. It outlives the payout (a
 * DELETE does not free the key), so a retry within that time can never create a second payout.
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    /** The API key that sent it: each API key has its own Idempotency-Keys (docs: access-control).
     * Keys stored before drizzle/0013 belong to the nil UUID, which no API key has. */
    apiKeyId: uuid("api_key_id").notNull(),
    key: varchar("key", { length: IDEMPOTENCY_KEY_MAX }).notNull(),
    /** SHA-256 of the normalised request body: the same key with another body is refused. */
    fingerprint: text("fingerprint").notNull(),
    payoutId: uuid("payout_id").notNull(),
    responseStatus: integer("response_status").notNull(),
    responseBody: jsonb("response_body").notNull(),
    createdAt: instant("created_at").notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.apiKeyId, t.key] }),
    // The retention purge reads the oldest keys first, a few hundred at a time: from this index.
    index("idempotency_keys_created_idx").on(t.createdAt),
  ],
);

/**
 * The simulated payout gateway's own ledger (what a real provider keeps on its side). Keyed by
 * the payment key the service sends (column idempotency_key, the provider's word for it; not the
 * client's Idempotency-Key), so a repeated call never pays twice, and counting calls
 * so that tests can see how often money was asked for. No index beyond the key: the ledger is
 * written once per payout on the hot path and read only by tests.
 */
export const simulatedGatewayPayments = pgTable("simulated_gateway_payments", {
  paymentKey: varchar("idempotency_key", { length: PAYMENT_KEY_MAX }).primaryKey(),
  payoutId: uuid("payout_id").notNull(),
  amount: numeric("amount", { precision: AMOUNT_PRECISION, scale: AMOUNT_SCALE }).notNull(),
  currency: currencyEnum("currency").notNull(),
  calls: integer("calls").notNull().default(1),
  createdAt: instant("created_at").notNull().defaultNow(),
});

/**
 * The audit trail: one row per change of a payout, written by the payouts trigger in the change's
 * own transaction (src/db/sql/audit-trail.sql), never updated or deleted, kept after the payout is.
 * The id is a UUID v7 made in SQL from the same millisecond as created_at, so ordering by id is
 * ordering by time: one index serves every list and a created_at bound is an id bound.
 */
export const payoutEvents = pgTable(
  "payout_events",
  {
    id: uuid("id").primaryKey(),
    type: eventTypeEnum("type").notNull(),
    payoutId: uuid("payout_id").notNull(),
    attempt: smallint("attempt"),
    createdAt: instant("created_at").notNull(),
    /** The payout as the API shows it, built by the trigger; json keeps the API's key order. */
    data: json("data").notNull(),
    /** Who made the change: the API key's id, or 'system' (the worker, the relay, psql). NULL for
     * events appended before drizzle/0013, which did not record it. */
    actor: text("actor"),
  },
  (t) => [index("payout_events_payout_idx").on(t.payoutId, t.id), index("payout_events_type_idx").on(t.type, t.id)],
);

/** Receivers of events. The secret signs deliveries and is never shown after create or rotate. */
export const webhookEndpoints = pgTable("webhook_endpoints", {
  id: uuid("id").primaryKey(),
  url: varchar("url", { length: URL_MAX }).notNull(),
  eventTypes: eventTypeEnum("event_types").array().notNull(),
  description: varchar("description", { length: DESCRIPTION_MAX }).notNull().default(""),
  enabled: boolean("enabled").notNull().default(true),
  disabledReason: text("disabled_reason"),
  /** When it was last disabled (NULL while enabled): the fan-out still gives it the events that
   * happened before, while it was enabled (drizzle/0011_webhook_fanout.sql). */
  disabledAt: instant("disabled_at"),
  /** The signing secret, sealed (src/webhooks/secret-box.ts): `v1:<key id>:<iv>:<ciphertext>`.
   * Rows stored in clear before 0014 (`whsec_...`) are sealed by the api and worker at start. */
  secret: text("secret").notNull(),
  /** The secret before the last rotation, sealed too: it still signs until previous_secret_expires_at. */
  previousSecret: text("previous_secret"),
  previousSecretExpiresAt: instant("previous_secret_expires_at"),
  /** Deliveries in a row that ended failed; WEBHOOK_DISABLE_AFTER of them disable the endpoint. */
  consecutiveFailures: integer("consecutive_failures").notNull().default(0),
  /** Truncated to the millisecond, as an event's created_at is: an endpoint created before an
   * event has a created_at at or before the event's, which is what the fan-out compares. */
  createdAt: instant("created_at").notNull().default(sql`date_trunc('milliseconds', now())`),
  updatedAt: instant("updated_at").notNull().defaultNow(),
  /** The API key that created it; `anonymous` for endpoints made before API keys existed. */
  createdBy: text("created_by").notNull(),
  /** Who changed it last (the API key, or `system`: the worker disabling it); the creator until then. */
  updatedBy: text("updated_by").notNull(),
});

/**
 * Events whose deliveries are still to be created: the events trigger writes one row per event in
 * the event's transaction while any endpoint is enabled, whatever their number; the delivery loop
 * expands each into one delivery per endpoint subscribed when it happened, and deletes the row in
 * the same statement (src/webhooks/delivery.ts, fanOut). A create's cost does not depend on how
 * many endpoints there are.
 */
export const webhookFanout = pgTable("webhook_fanout", {
  eventId: uuid("event_id").primaryKey(),
  eventType: eventTypeEnum("event_type").notNull(),
  /** The event's created_at. */
  createdAt: instant("created_at").notNull(),
});

/**
 * One row per (event, endpoint subscribed to it when the event happened), inserted by the fan-out
 * from webhook_fanout; never two for one pair. No foreign keys: a payout write must never fail because an
 * endpoint was deleted at the same moment; deliveries of a deleted endpoint are deleted with it.
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey(),
    endpointId: uuid("endpoint_id").notNull(),
    eventId: uuid("event_id").notNull(),
    eventType: eventTypeEnum("event_type").notNull(),
    status: deliveryStatusEnum("status").notNull().default("pending"),
    /** Attempts started so far; counted when an attempt is claimed, so it is also its token. */
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: instant("next_attempt_at").notNull().defaultNow(),
    /** The lease of the attempt in flight: until then no other worker may start one. */
    lockedUntil: instant("locked_until"),
    lastAttemptAt: instant("last_attempt_at"),
    lastResponseStatus: integer("last_response_status"),
    lastError: text("last_error"),
    /** The event's created_at: deliveries list newest first, like events. */
    createdAt: instant("created_at").notNull(),
  },
  (t) => [
    index("webhook_deliveries_endpoint_idx").on(t.endpointId, t.id),
    // A fan-out repeated after a crash adds nothing: one delivery per endpoint and event.
    uniqueIndex("webhook_deliveries_endpoint_event_idx").on(t.endpointId, t.eventId),
    // The delivery loop's one read: each endpoint's due pending deliveries, oldest first.
    index("webhook_deliveries_pending_idx")
      .on(t.endpointId, t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
  ],
);

/**
 * What an API key may be allowed (docs: access-control). Persisted, so owned here; the keys
 * feature's model reads it.
 */
export const SCOPES = ["payouts:read", "payouts:write", "events:read", "webhooks:manage", "keys:manage"] as const;

const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => "bytea",
  // postgres.js answers a Buffer, PGlite a Uint8Array: the code above sees a Buffer either way.
  fromDriver: (value) => (Buffer.isBuffer(value) ? value : Buffer.from(value)),
});

/**
 * API keys (drizzle/0012_api_keys.sql). A row is never deleted: a revoked key keeps its row, so
 * its id, which events and other keys name as their actor, still resolves. Only the SHA-256 of
 * each secret is stored; the secret itself is shown once and kept nowhere.
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    /** UUID v7, also the public part of the key (pk_<id>_<secret>). */
    id: uuid("id").primaryKey(),
    name: varchar("name", { length: NAME_MAX }).notNull(),
    scopes: text("scopes").array().notNull(),
    secretHash: bytea("secret_hash").notNull(),
    /** The secret before the last roll: it still authenticates until previous_secret_expires_at. */
    previousSecretHash: bytea("previous_secret_hash"),
    previousSecretExpiresAt: instant("previous_secret_expires_at"),
    createdAt: instant("created_at").notNull().defaultNow(),
    /** The key that created it, or 'bootstrap' (the keys role, the development key). */
    createdBy: text("created_by").notNull(),
    expiresAt: instant("expires_at"),
    /** At most a minute stale: uses are batched in memory (src/keys/service.ts). */
    lastUsedAt: instant("last_used_at"),
    rolledAt: instant("rolled_at"),
    rolledBy: text("rolled_by"),
    revokedAt: instant("revoked_at"),
    revokedBy: text("revoked_by"),
  },
  (t) => [
    check(
      "api_keys_scopes_known",
      sql`${t.scopes} <@ ${sql.raw(`ARRAY[${SCOPES.map((s) => `'${s}'`).join(", ")}]::text[]`)}`,
    ),
    check("api_keys_scopes_not_empty", sql`cardinality(${t.scopes}) > 0`),
    check("api_keys_secret_hash_sha256", sql`octet_length(${t.secretHash}) = 32`),
    check(
      "api_keys_previous_secret_whole",
      sql`(${t.previousSecretHash} IS NULL) = (${t.previousSecretExpiresAt} IS NULL) AND coalesce(octet_length(${t.previousSecretHash}), 32) = 32`,
    ),
    check("api_keys_revoked_whole", sql`(${t.revokedAt} IS NULL) = (${t.revokedBy} IS NULL)`),
    check("api_keys_rolled_whole", sql`(${t.rolledAt} IS NULL) = (${t.rolledBy} IS NULL)`),
  ],
);

export type PayoutRow = typeof payouts.$inferSelect;
export type PayoutEventRow = typeof payoutEvents.$inferSelect;
export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
