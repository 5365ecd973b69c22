-- A create's cost no longer grows with the number of webhook endpoints (issue 17, item 2). The
-- events trigger wrote one delivery per subscribed endpoint in the create's transaction: with 50,
-- 200 and 500 endpoints creates fell to 143, 72 and 34 a second. Now it writes one webhook_fanout
-- row per event (none while no enabled endpoint subscribes to its type), and the delivery loop
-- expands each into its deliveries outside any payout's transaction, as Svix does:
-- * an endpoint receives an event when it was created at or before the event (both truncated to
--   the millisecond, hence the new default of created_at) and was enabled at the event's time:
--   it is enabled now, or was disabled after the event (disabled_at);
-- * one delivery per endpoint and event (a unique index): a fan-out repeated after a crash adds
--   nothing;
-- * the delivery loop claims due deliveries per endpoint (an index on endpoint_id, next_attempt_at),
--   so one endpoint's backlog is never in front of another's (item 6); the global due index goes.

CREATE TABLE "webhook_fanout" (
	"event_id" uuid PRIMARY KEY NOT NULL,
	"event_type" "payout_event_type" NOT NULL,
	"created_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
DROP INDEX "webhook_deliveries_due_idx";--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ALTER COLUMN "created_at" SET DEFAULT date_trunc('milliseconds', now());--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD COLUMN "disabled_at" timestamp (3) with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_endpoint_event_idx" ON "webhook_deliveries" USING btree ("endpoint_id","event_id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_pending_idx" ON "webhook_deliveries" USING btree ("endpoint_id","next_attempt_at") WHERE "webhook_deliveries"."status" = 'pending';
--> statement-breakpoint
-- Endpoints disabled before this migration: since their last change, the best time known.
UPDATE webhook_endpoints SET disabled_at = updated_at WHERE NOT enabled;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION payouts_append_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  now_exact timestamptz := clock_timestamp();
  at timestamptz := date_trunc('milliseconds', now_exact);
  prefix bytea := uuid_v7_prefix(now_exact);
  event_ids uuid[];
  appended_types payout_event_type[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING prefix FROM 1 FOR 8), 'hex')::uuid, 'payout.created', n.id, NULL, at, payout_json(n::payouts) FROM new_rows n
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, appended_types FROM appended;
  ELSIF TG_OP = 'DELETE' THEN
    WITH appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING prefix FROM 1 FOR 8), 'hex')::uuid, 'payout.deleted', o.id, NULL, at, payout_json(o::payouts) FROM old_rows o
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, appended_types FROM appended;
  ELSE
    -- Only a change a client can see is an event: the outbox marking a payout published, or an
    -- edit that sets every field to its current value, appends nothing. A claim is an event every
    -- time (retries and takeovers bump attempts while the status stays PROCESSING).
    WITH changed AS (
      SELECT n::payouts AS p,
             CASE
               WHEN n.status IS DISTINCT FROM o.status THEN
                 CASE n.status
                   WHEN 'PROCESSING' THEN 'payout.processing'
                   WHEN 'COMPLETED' THEN 'payout.completed'
                   WHEN 'FAILED' THEN 'payout.failed'
                   WHEN 'CANCELLED' THEN 'payout.cancelled'
                 END
               WHEN n.status = 'PROCESSING' AND n.attempts > o.attempts THEN 'payout.processing'
               WHEN (n.amount, n.currency, n.recipient_details, n.comment, n.failure_reason, n.created_at, n.processed_at)
                    IS DISTINCT FROM
                    (o.amount, o.currency, o.recipient_details, o.comment, o.failure_reason, o.created_at, o.processed_at)
                 THEN 'payout.updated'
             END::payout_event_type AS type
      FROM new_rows n JOIN old_rows o ON o.id = n.id
    ), appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING prefix FROM 1 FOR 8), 'hex')::uuid, c.type, (c.p).id,
             CASE WHEN c.type IN ('payout.processing', 'payout.completed', 'payout.failed') THEN (c.p).attempts END,
             at, payout_json(c.p)
      FROM changed c WHERE c.type IS NOT NULL
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, appended_types FROM appended;
  END IF;

  -- The deliveries of these events are the delivery loop's to create (src/webhooks/delivery.ts,
  -- fanOut): here one row per event, in this transaction, so no crash can lose it, whatever the
  -- number of endpoints. Most of the time no enabled endpoint subscribes to these types, and the
  -- EXISTS on that tiny table is all this costs.
  IF event_ids IS NOT NULL
     AND EXISTS (SELECT FROM webhook_endpoints WHERE enabled AND event_types && appended_types) THEN
    INSERT INTO webhook_fanout (event_id, event_type, created_at)
    SELECT e.id, e.type, at FROM unnest(event_ids, appended_types) AS e(id, type);
  END IF;
  RETURN NULL;
END $$;
