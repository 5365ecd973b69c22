-- A create's deadline, enforced at its commit (issue 17). The api's create statements write a row
-- only while clock_timestamp() is before the row's deadline; the AFTER INSERT triggers then append
-- the audit event, the outbox row and the webhook deliveries, and may wait on a lock (another
-- session's LOCK TABLE payout_outbox, a VACUUM FULL of payout_events), or the keyed create on the
-- key's unique index, or the backend may be starved of CPU: the statement used to commit after the
-- api had answered 503 ("nothing was created") or 504 (and its id's 404 "final").
--
-- Now the create statement names its deadline (create_deadline_fence, a transaction-local setting)
-- and a deferred constraint trigger checks it inside COMMIT, after every trigger and lock wait of
-- the transaction, just before the commit record: a create that reaches its commit at or after its
-- deadline raises PD001 and rolls back. Guarantee: no create commits later than its deadline by
-- the database's clock, except for what follows the check: the commit record's WAL flush and, with
-- synchronous replication, the wait for the standby (unbounded while no standby answers). The api
-- looks a doubtful create up only SETTLE_MS after the deadline (src/payouts/service.ts), which
-- covers the flush and the two clocks' difference, not a synchronous standby that stops answering.
--
-- Without the setting (operators' psql, the worker, the bench floors) nothing is checked.
-- The fence also sets the transaction's lock_timeout to what is left until the deadline, so that a
-- lock wait ends there with 55P03 instead of holding the api's pooled connection for as long as the
-- lock is held; the check at commit does not depend on it.

-- Sets the deadline the commit is checked against (as Unix seconds: no date format to parse back)
-- and the lock timeout; true. Called once per statement, before its rows are inserted.
CREATE FUNCTION create_deadline_fence(deadline timestamptz) RETURNS boolean LANGUAGE sql VOLATILE AS $$
  SELECT set_config('payouts.create_deadline', extract(epoch FROM deadline)::text, true) IS NOT NULL
     AND set_config('lock_timeout',
                    greatest(1, ceil(extract(epoch FROM deadline - clock_timestamp()) * 1000))::bigint::text,
                    true) IS NOT NULL
$$;
--> statement-breakpoint
-- The trigger's WHEN: true for the first row a fenced transaction inserts, false for every other,
-- so a batch of 200 creates queues one check, not 200 (a PL/pgSQL call and a heap fetch each, at
-- commit: about 4 us per row measured; the WHEN alone is within the measurement's noise). The mark
-- is transaction-local, as the deadline is: the next transaction on the connection starts unmarked.
CREATE FUNCTION create_deadline_unqueued() RETURNS boolean LANGUAGE sql VOLATILE AS $$
  SELECT CASE
    WHEN coalesce(current_setting('payouts.create_deadline', true), '') = '' THEN false
    WHEN current_setting('payouts.create_deadline_queued', true) = 'on' THEN false
    ELSE set_config('payouts.create_deadline_queued', 'on', true) = 'on'
  END
$$;
--> statement-breakpoint
CREATE FUNCTION payouts_commit_by_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF clock_timestamp() >= to_timestamp(current_setting('payouts.create_deadline')::double precision) THEN
    RAISE EXCEPTION 'the create''s deadline passed before its commit; nothing was stored'
      USING ERRCODE = 'PD001';
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER payouts_commit_by_deadline AFTER INSERT ON payouts
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (create_deadline_unqueued())
  EXECUTE FUNCTION payouts_commit_by_deadline();
