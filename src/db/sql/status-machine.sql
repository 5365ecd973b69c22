-- The status machine, enforced by the database itself, whoever writes: src/payouts/status.ts is
-- its twin in code, and test/contract/db/status-machine.test.ts checks that the two agree.
-- Last defined by drizzle/0001_status_machine.sql.

CREATE OR REPLACE FUNCTION payouts_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
       (OLD.status = 'NEW' AND NEW.status IN ('PROCESSING', 'CANCELLED'))
    OR (OLD.status = 'PROCESSING' AND NEW.status IN ('COMPLETED', 'FAILED'))
  ) THEN
    RAISE EXCEPTION 'payout %: status % cannot become %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.status <> 'NEW'
     AND (NEW.amount, NEW.currency, NEW.recipient_details)
         IS DISTINCT FROM (OLD.amount, OLD.currency, OLD.recipient_details) THEN
    RAISE EXCEPTION 'payout %: amount, currency and recipient_details are frozen in status %', OLD.id, OLD.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER payouts_status_machine BEFORE UPDATE ON payouts
  FOR EACH ROW EXECUTE FUNCTION payouts_guard_update();

CREATE OR REPLACE FUNCTION payouts_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IN ('PROCESSING', 'COMPLETED') THEN
    RAISE EXCEPTION 'payout %: a % payout is kept', OLD.id, OLD.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN OLD;
END $$;

CREATE TRIGGER payouts_keep_moving_money BEFORE DELETE ON payouts
  FOR EACH ROW EXECUTE FUNCTION payouts_guard_delete();
