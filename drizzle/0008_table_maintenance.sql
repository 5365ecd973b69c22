-- Autovacuum sized for tables of millions of rows (bench/RESULTS.md, the 5-million-payout runs).
-- The default scale factor of 0.2 waits for a fifth of a table to be dead before vacuuming it: a
-- million dead versions at 5 million payouts, while the relay and every claim walk the dead entries
-- of the NEW and PROCESSING ranges of the status index. Each payout leaves two dead versions (its
-- claim and its outcome each replace the row), so payouts and the webhook deliveries (inserted,
-- then updated once or more) are vacuumed every 1% of their rows. payout_outbox keeps the
-- defaults: it holds next to nothing live, so 50 dead rows already start a vacuum.
ALTER TABLE payouts SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01);
--> statement-breakpoint
ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01);
--> statement-breakpoint
-- Insert-only tables: vacuumed every 1% of new rows to keep their visibility maps current (index-
-- only scans, and no anti-wraparound vacuum of 15 million rows at once).
ALTER TABLE payout_events SET (autovacuum_vacuum_insert_scale_factor = 0.01);
--> statement-breakpoint
ALTER TABLE simulated_gateway_payments SET (autovacuum_vacuum_insert_scale_factor = 0.01);
