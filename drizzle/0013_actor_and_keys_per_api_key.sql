-- Access control, items 6 and 7 (issue 19; docs: access-control, "Who did it" and "Idempotency
-- keys").
-- * Every payout event names its actor: payout_events.actor is the API key's id, or 'system' for
--   the worker, the relay and anything else that writes without the api. Events appended before
--   this migration keep actor NULL: the trail is append-only and nothing recorded who made them.
--   payouts.created_by carries the creating key's id into the INSERT trigger, per row (one batch
--   of creates holds rows of several keys); updates and deletes say theirs in the
--   transaction-local setting payouts.actor (src/db/sql/audit-trail.sql).
-- * An Idempotency-Key belongs to the API key that sent it: the primary key becomes
--   (api_key_id, key). Keys stored before this migration were sent before there were API keys:
--   they go to the nil UUID, which no API key has, so none of them is replayed to any key (a client
--   repeating, after the upgrade, a create it sent before it creates a new payout); the retention
--   purge deletes them after IDEMPOTENCY_KEY_TTL_MS as before. Rebuilding the primary key holds
--   the table's lock while it is built (keyed creates wait): about a second per million keys kept.
ALTER TABLE "payouts" ADD COLUMN "created_by" text;--> statement-breakpoint
ALTER TABLE "payout_events" ADD COLUMN "actor" text;--> statement-breakpoint
-- The default only fills the existing rows (no table rewrite); the api names every new row's key.
ALTER TABLE "idempotency_keys" ADD COLUMN "api_key_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';--> statement-breakpoint
ALTER TABLE "idempotency_keys" ALTER COLUMN "api_key_id" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "idempotency_keys" DROP CONSTRAINT "idempotency_keys_pkey";--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_api_key_id_key_pk" PRIMARY KEY("api_key_id","key");--> statement-breakpoint
CREATE OR REPLACE FUNCTION payouts_append_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  now_exact timestamptz := clock_timestamp();
  at timestamptz := date_trunc('milliseconds', now_exact);
  prefix bytea := uuid_v7_prefix(now_exact);
  event_ids uuid[];
  appended_types payout_event_type[];
  -- Unset in this session is NULL; set in an earlier transaction of the session is ''.
  session_actor text := coalesce(nullif(current_setting('payouts.actor', true), ''), 'system');
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data, actor)
      SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING prefix FROM 1 FOR 8), 'hex')::uuid, 'payout.created', n.id, NULL, at, payout_json(n::payouts),
             coalesce(n.created_by, session_actor)
      FROM new_rows n
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, appended_types FROM appended;
  ELSIF TG_OP = 'DELETE' THEN
    WITH appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data, actor)
      SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING prefix FROM 1 FOR 8), 'hex')::uuid, 'payout.deleted', o.id, NULL, at, payout_json(o::payouts),
             session_actor
      FROM old_rows o
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
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data, actor)
      SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING prefix FROM 1 FOR 8), 'hex')::uuid, c.type, (c.p).id,
             CASE WHEN c.type IN ('payout.processing', 'payout.completed', 'payout.failed') THEN (c.p).attempts END,
             at, payout_json(c.p), session_actor
      FROM changed c WHERE c.type IS NOT NULL
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, appended_types FROM appended;
  END IF;

  -- The deliveries of these events are the delivery loop's to create (src/webhooks/delivery/fanout.ts,
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
