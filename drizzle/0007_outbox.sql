CREATE TABLE "payout_outbox" (
	"payout_id" uuid PRIMARY KEY NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
-- The transactional outbox, written by PostgreSQL itself: every payout inserted NEW, by the api's
-- batch, its keyed create or an operator's psql, gets its outbox row in the same transaction. The
-- api's hand-off deletes the row once the broker confirmed the message; the relay publishes what
-- is left. Until this table, the hand-off marked the payout itself (published_at), an UPDATE of
-- the payouts table that cost PostgreSQL about as much as the INSERT it followed (its triggers,
-- and new index entries whenever the page had no room for a HOT version).
CREATE FUNCTION payouts_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO payout_outbox (payout_id) SELECT id FROM new_rows WHERE status = 'NEW';
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER payouts_outbox_on_insert AFTER INSERT ON payouts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION payouts_enqueue();
--> statement-breakpoint
-- What the hand-off had not marked published yet is still owed to the broker.
INSERT INTO payout_outbox (payout_id, created_at)
SELECT id, created_at FROM payouts WHERE status = 'NEW' AND published_at IS NULL;
--> statement-breakpoint
-- No update of payouts can be HOT any more but the relay's rare republish: the room fillfactor 85
-- kept on each page for the hand-off's mark (drizzle/0002_hot_paths.sql) is given back.
ALTER TABLE payouts RESET (fillfactor);
