-- The transactional outbox, written by PostgreSQL itself: every payout inserted NEW, by the api's
-- batch, its keyed create or an operator's psql, gets its outbox row in the same transaction. The
-- api's hand-off deletes the row once the broker confirmed the message; the relay
-- (src/payouts/processing/outbox.ts) publishes what is left.
-- Last defined by drizzle/0007_outbox.sql.

CREATE OR REPLACE FUNCTION payouts_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO payout_outbox (payout_id) SELECT id FROM new_rows WHERE status = 'NEW';
  RETURN NULL;
END $$;

CREATE TRIGGER payouts_outbox_on_insert AFTER INSERT ON payouts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_enqueue();
