-- The audit trail, written by PostgreSQL itself: whoever changes a payout (the api, a worker, an
-- operator's psql) appends its event, and the webhook deliveries of that event, in the same
-- transaction. A change without its event, or an event without its change, cannot commit.

-- A UUID v7 (RFC 9562) for the given instant, as PostgreSQL 15 has no uuidv7(): 48 bits of Unix
-- milliseconds, then the version and 12 bits of the fraction of the millisecond (the RFC's method
-- 3), then the variant and random bits. Two changes of one payout, even within one millisecond,
-- get ids in the order they happened, since clock_timestamp() has microseconds. PL/pgSQL, not SQL:
-- a SQL function that is not inlined is planned on every call, ten times slower on the hot path.
CREATE FUNCTION uuid_v7(at timestamptz) RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  micros bigint := (date_part('epoch', at) * 1000000)::bigint;
BEGIN
  RETURN encode(overlay(uuid_send(gen_random_uuid())
                        PLACING int8send((micros / 1000) << 16 | (x'7000'::int + (micros % 1000) * 4096 / 1000))
                        FROM 1 FOR 8), 'hex')::uuid;
END $$;
--> statement-breakpoint
-- A timestamp as the API writes it (Date.toISOString): RFC 3339, UTC, milliseconds, "Z".
CREATE FUNCTION api_instant(at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
--> statement-breakpoint
-- The payout resource exactly as the API shows it (src/payouts/service.ts toPayout), in its key
-- order; test/events/trail.test.ts compares the two.
CREATE FUNCTION payout_json(p payouts) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN json_build_object(
    'id', p.id,
    'amount', p.amount::text,
    'currency', p.currency,
    'recipient_details', p.recipient_details,
    'comment', p.comment,
    'status', p.status,
    'failure_reason', p.failure_reason,
    'created_at', api_instant(p.created_at),
    'updated_at', api_instant(p.updated_at),
    'processed_at', api_instant(p.processed_at));
END $$;
--> statement-breakpoint
-- One statement-level trigger per operation, reading the statement's transition tables: a batch
-- of 200 creates or claims appends its 200 events with one INSERT, not 200.
CREATE FUNCTION payouts_append_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  now_exact timestamptz := clock_timestamp();
  at timestamptz := date_trunc('milliseconds', now_exact);
  event_ids uuid[];
  event_types payout_event_type[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT uuid_v7(now_exact), 'payout.created', n.id, NULL, at, payout_json(n::payouts) FROM new_rows n
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, event_types FROM appended;
  ELSIF TG_OP = 'DELETE' THEN
    WITH appended AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT uuid_v7(now_exact), 'payout.deleted', o.id, NULL, at, payout_json(o::payouts) FROM old_rows o
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, event_types FROM appended;
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
      SELECT uuid_v7(now_exact), c.type, (c.p).id,
             CASE WHEN c.type IN ('payout.processing', 'payout.completed', 'payout.failed') THEN (c.p).attempts END,
             at, payout_json(c.p)
      FROM changed c WHERE c.type IS NOT NULL
      RETURNING id, type
    )
    SELECT array_agg(id), array_agg(type) INTO event_ids, event_types FROM appended;
  END IF;

  -- One delivery per event and enabled endpoint subscribed to its type, in this transaction: no
  -- crash can lose one, and an endpoint created later never gets an earlier event. Most of the
  -- time there is no enabled endpoint, and the EXISTS on that tiny table is all this costs.
  IF event_ids IS NOT NULL AND EXISTS (SELECT FROM webhook_endpoints WHERE enabled) THEN
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, next_attempt_at, created_at)
    SELECT uuid_v7(now_exact), w.id, e.id, e.type, at, at
    FROM unnest(event_ids, event_types) AS e(id, type)
    JOIN webhook_endpoints w ON w.enabled AND e.type = ANY (w.event_types);
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER payouts_events_on_insert AFTER INSERT ON payouts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_append_events();
--> statement-breakpoint
CREATE TRIGGER payouts_events_on_update AFTER UPDATE ON payouts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_append_events();
--> statement-breakpoint
CREATE TRIGGER payouts_events_on_delete AFTER DELETE ON payouts
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_append_events();
--> statement-breakpoint
-- Append-only: the trail is evidence. (TRUNCATE, an owner's deliberate act, is not refused.)
CREATE FUNCTION payout_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'payout_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
CREATE TRIGGER payout_events_append_only BEFORE UPDATE OR DELETE ON payout_events
  FOR EACH STATEMENT EXECUTE FUNCTION payout_events_refuse_change();
