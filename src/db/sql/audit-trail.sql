-- The audit trail, written by PostgreSQL itself: whoever changes a payout (the api, a worker, an
-- operator's psql) appends its event, and the event's webhook fan-out row, in the same
-- transaction. A change without its event, or an event without its change, cannot commit.
-- payouts_append_events: last defined by drizzle/0013_actor_and_keys_per_api_key.sql; the triggers
-- and payout_events_refuse_change by drizzle/0006_events_trigger.sql.

-- One statement-level trigger per operation, reading the statement's transition tables: a batch
-- of 200 creates or claims appends its 200 events with one INSERT, not 200. The ids of one
-- statement's events share the statement's instant (uuid-v7.sql). The deliveries of the events are
-- the delivery loop's to create from webhook_fanout (src/webhooks/delivery/fanout.ts), outside any
-- payout's transaction, so that a create's cost does not grow with the number of endpoints.
--
-- Each event names its actor (docs: access-control, "Who did it"): a created payout's own
-- created_by (the api writes each row's API key id: one batch holds rows of several keys); for
-- an UPDATE or DELETE the transaction-local setting payouts.actor, which the api's statement sets
-- itself (set_config(..., true) in a CTE the statement reads first: src/payouts/service.ts), so it
-- ends with that statement's transaction and never reaches the next user of a pooled connection.
-- Whatever sets neither (the worker, the relay, an operator's psql) is 'system'.
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

CREATE TRIGGER payouts_events_on_insert AFTER INSERT ON payouts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_append_events();

CREATE TRIGGER payouts_events_on_update AFTER UPDATE ON payouts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_append_events();

CREATE TRIGGER payouts_events_on_delete AFTER DELETE ON payouts
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_append_events();

-- Append-only: the trail is evidence. (TRUNCATE, an owner's deliberate act, is not refused.)
CREATE OR REPLACE FUNCTION payout_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'payout_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER payout_events_append_only BEFORE UPDATE OR DELETE ON payout_events
  FOR EACH STATEMENT EXECUTE FUNCTION payout_events_refuse_change();
