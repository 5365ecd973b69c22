-- A create's deadline, enforced at its commit. The api's create statements (src/payouts/create.ts)
-- name their deadline (create_deadline_fence, a transaction-local setting) and a deferred
-- constraint trigger checks it inside COMMIT, after every trigger and lock wait of the
-- transaction: a create that reaches its commit at or after its deadline raises PD001 and rolls
-- back. Without the setting (operators' psql, the worker, the bench floors) nothing is checked.
-- The fence also sets the transaction's lock_timeout to what is left until the deadline, so that a
-- lock wait ends there with 55P03 instead of holding the api's pooled connection.
-- Last defined by drizzle/0010_create_deadline_at_commit.sql, which says what the check covers.

-- Sets the deadline the commit is checked against (as Unix seconds: no date format to parse back)
-- and the lock timeout; true. Called once per statement, before its rows are inserted.
CREATE OR REPLACE FUNCTION create_deadline_fence(deadline timestamptz) RETURNS boolean LANGUAGE sql VOLATILE AS $$
  SELECT set_config('payouts.create_deadline', extract(epoch FROM deadline)::text, true) IS NOT NULL
     AND set_config('lock_timeout',
                    greatest(1, ceil(extract(epoch FROM deadline - clock_timestamp()) * 1000))::bigint::text,
                    true) IS NOT NULL
$$;

-- The trigger's WHEN: true for the first row a fenced transaction inserts, false for every other,
-- so a batch of 200 creates queues one check, not 200 (a PL/pgSQL call and a heap fetch each, at
-- commit: about 4 us per row measured; the WHEN alone is within the measurement's noise). The mark
-- is transaction-local, as the deadline is: the next transaction on the connection starts unmarked.
CREATE OR REPLACE FUNCTION create_deadline_unqueued() RETURNS boolean LANGUAGE sql VOLATILE AS $$
  SELECT CASE
    WHEN coalesce(current_setting('payouts.create_deadline', true), '') = '' THEN false
    WHEN current_setting('payouts.create_deadline_queued', true) = 'on' THEN false
    ELSE set_config('payouts.create_deadline_queued', 'on', true) = 'on'
  END
$$;

CREATE OR REPLACE FUNCTION payouts_commit_by_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF clock_timestamp() >= to_timestamp(current_setting('payouts.create_deadline')::double precision) THEN
    RAISE EXCEPTION 'the create''s deadline passed before its commit; nothing was stored'
      USING ERRCODE = 'PD001';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER payouts_commit_by_deadline AFTER INSERT ON payouts
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (create_deadline_unqueued())
  EXECUTE FUNCTION payouts_commit_by_deadline();
