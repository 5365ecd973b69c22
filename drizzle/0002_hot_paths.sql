-- The relay finds NEW payouts through the status index, and published_at is in no index: marking
-- a payout published is then a HOT update that touches no index.
DROP INDEX "payouts_unpublished_idx";--> statement-breakpoint
-- Room on each page for the row's next version, so that HOT updates stay on the page.
ALTER TABLE "payouts" SET (fillfactor = 85);--> statement-breakpoint
-- The simulated gateway's ledger is written on every payout and read only by tests: one index,
-- its idempotency key.
DROP INDEX "simulated_gateway_payments_payout_idx";--> statement-breakpoint
ALTER TABLE "simulated_gateway_payments" DROP COLUMN "id";--> statement-breakpoint
ALTER TABLE "simulated_gateway_payments" DROP CONSTRAINT "simulated_gateway_payments_idempotency_key_unique";--> statement-breakpoint
ALTER TABLE "simulated_gateway_payments" ADD PRIMARY KEY ("idempotency_key");
