-- The payout resource exactly as the API shows it (toPayout in src/payouts/model.ts), in its key
-- order; test/contract/events/trail.test.ts compares the two.
-- api_instant: last defined by drizzle/0006_events_trigger.sql; payout_json: by
-- drizzle/0009_audit_trail_cheaper.sql.

-- A timestamp as the API writes it (Date.toISOString): RFC 3339, UTC, milliseconds, "Z".
CREATE OR REPLACE FUNCTION api_instant(at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Inlined by the planner where it is called (a SQL function whose body is one expression).
CREATE OR REPLACE FUNCTION payout_json(p payouts) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', p.id,
    'amount', p.amount::text,
    'currency', p.currency,
    'recipient_details', p.recipient_details,
    'comment', p.comment,
    'status', p.status,
    'failure_reason', p.failure_reason,
    'created_at', api_instant(p.created_at),
    'updated_at', api_instant(p.updated_at),
    'processed_at', api_instant(p.processed_at))
$$;
