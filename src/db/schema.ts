import { sql } from "drizzle-orm";
import {
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  smallint,
  text,
  timestamp,
  uuid,
  varchar,
} from "drizzle-orm/pg-core";
import { CURRENCIES, STATUSES } from "../payouts/model";

export const currencyEnum = pgEnum("currency", CURRENCIES);
export const payoutStatusEnum = pgEnum("payout_status", STATUSES);

// Millisecond precision: what the API shows is exactly what is stored, so a cursor built from a
// response finds its row again.
const instant = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: "date" });

export const payouts = pgTable(
  "payouts",
  {
    id: uuid("id").primaryKey(),
    amount: numeric("amount", { precision: 12, scale: 2 }).notNull(),
    currency: currencyEnum("currency").notNull(),
    recipientDetails: varchar("recipient_details", { length: 255 }).notNull(),
    comment: varchar("comment", { length: 1000 }).notNull().default(""),
    status: payoutStatusEnum("status").notNull().default("NEW"),
    failureReason: text("failure_reason"),
    /** Gateway attempts so far; counted when a worker claims the payout. */
    attempts: smallint("attempts").notNull().default(0),
    /** When a worker last claimed it: only workers write this, so a client's edit cannot make a
     * lost PROCESSING payout look alive to the relay. */
    claimedAt: instant("claimed_at"),
    /** When the id was confirmed by the broker; NULL means the relay still has to publish it. */
    publishedAt: instant("published_at"),
    createdAt: instant("created_at").notNull().defaultNow(),
    updatedAt: instant("updated_at").notNull().defaultNow(),
    processedAt: instant("processed_at"),
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
    // finds NEW payouts through the status index; published_at is in no index, so marking a
    // payout published is a HOT update that touches no index (see drizzle/0002_hot_paths.sql).
    index("payouts_created_idx").on(t.createdAt, t.id),
    index("payouts_status_created_idx").on(t.status, t.createdAt, t.id),
    index("payouts_currency_created_idx").on(t.currency, t.createdAt, t.id),
  ],
);

/**
 * One row per Idempotency-Key accepted within IDEMPOTENCY_KEY_TTL_MS. It outlives the payout (a
 * DELETE does not free the key), so a retry within that time can never create a second payout.
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    key: varchar("key", { length: 255 }).primaryKey(),
    /** SHA-256 of the normalised request body: the same key with another body is refused. */
    fingerprint: text("fingerprint").notNull(),
    payoutId: uuid("payout_id").notNull(),
    responseStatus: integer("response_status").notNull(),
    responseBody: jsonb("response_body").notNull(),
    createdAt: instant("created_at").notNull().defaultNow(),
  },
  // The retention purge reads the oldest keys first, a few hundred at a time: from this index.
  (t) => [index("idempotency_keys_created_idx").on(t.createdAt)],
);

/**
 * The simulated payout gateway's own ledger (what a real provider keeps on its side). Keyed by
 * the idempotency key the service sends, so a repeated call never pays twice, and counting calls
 * so that tests can see how often money was asked for. No index beyond the key: the ledger is
 * written once per payout on the hot path and read only by tests.
 */
export const simulatedGatewayPayments = pgTable("simulated_gateway_payments", {
  idempotencyKey: varchar("idempotency_key", { length: 255 }).primaryKey(),
  payoutId: uuid("payout_id").notNull(),
  amount: numeric("amount", { precision: 12, scale: 2 }).notNull(),
  currency: currencyEnum("currency").notNull(),
  calls: integer("calls").notNull().default(1),
  createdAt: instant("created_at").notNull().defaultNow(),
});

export type PayoutRow = typeof payouts.$inferSelect;
