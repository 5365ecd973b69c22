import { sql } from "drizzle-orm";
import { type Db, resultRows } from "../../db/client";

/** At most this many deliveries made by one fan-out statement (whole events: at least one). */
export const FANOUT_DELIVERIES = 5000;
/** At most this many events fanned out by one statement. */
const FANOUT_EVENTS = 500;

/**
 * One step of the fan-out: takes the oldest events of webhook_fanout (written by the events
 * trigger in each event's transaction, src/db/sql/audit-trail.sql), creates one delivery per
 * endpoint that was subscribed when the event happened, and deletes the events' rows, all in one
 * statement: a crash before its commit leaves the rows for the next step, one after leaves
 * nothing to redo. Replicas take different rows (SKIP LOCKED), and one delivery per endpoint and
 * event (a unique index, ON CONFLICT DO NOTHING) holds whatever happens.
 *
 * Which endpoints receive an event: those created at or before it (endpoints created later do
 * not receive earlier events), subscribed to its type, and enabled at its time: enabled now, or
 * disabled after the event (disabled_at), whose delivery then waits for the endpoint to be enabled
 * again, as if it had been created with the event. What is not known at fan-out time is read as it
 * is now: an endpoint deleted since receives nothing (its deliveries would be deleted with it), an
 * endpoint whose event_types changed since is judged by its current ones, and an endpoint that was
 * disabled at the event's time and enabled again since receives the event. The fan-out normally
 * runs within a poll interval of the event, so these cases only matter while deliveries are down.
 *
 * The endpoints are locked against deletion (KEY SHARE, which an UPDATE does not wait for) while
 * the statement runs: a DELETE of an endpoint either waits and then deletes the deliveries made
 * here, or commits first and the endpoint is skipped; no delivery outlives its endpoint.
 *
 * `maxDeliveries` bounds the deliveries made (whole events: one event at least); returns the
 * events fanned out and whether the batch was full (more may be waiting).
 */
export async function fanOut(db: Db, maxDeliveries = FANOUT_DELIVERIES) {
  const [row] = resultRows<{ events: number; batch: number; deliveries: number }>(
    await db.execute(sql`
      WITH batch AS MATERIALIZED (
        SELECT least(${FANOUT_EVENTS}, greatest(1, ${maxDeliveries} / greatest(1, count(*))))::int AS size
        FROM webhook_endpoints
      ), claimed AS MATERIALIZED (
        SELECT event_id, event_type, created_at FROM webhook_fanout
        ORDER BY event_id
        LIMIT (SELECT size FROM batch)
        FOR UPDATE SKIP LOCKED
      ), receivers AS MATERIALIZED (
        SELECT w.id, w.event_types, w.enabled, w.disabled_at, w.created_at FROM webhook_endpoints w
        WHERE w.created_at <= (SELECT max(created_at) FROM claimed)
          AND (w.enabled OR w.disabled_at >= (SELECT min(created_at) FROM claimed))
        FOR KEY SHARE
      ), made AS (
        -- The delivery's id has the event's time prefix: deliveries list in the order of their events.
        INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, next_attempt_at, created_at)
        SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING substring(uuid_send(c.event_id) FROM 1 FOR 8) FROM 1 FOR 8), 'hex')::uuid,
               r.id, c.event_id, c.event_type, c.created_at, c.created_at
        FROM claimed c JOIN receivers r
          ON r.created_at <= c.created_at AND c.event_type = ANY (r.event_types)
         AND (r.enabled OR r.disabled_at >= c.created_at)
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        RETURNING 1
      ), done AS (
        DELETE FROM webhook_fanout f USING claimed c WHERE f.event_id = c.event_id RETURNING 1
      )
      SELECT (SELECT count(*) FROM done)::int AS events, (SELECT size FROM batch) AS batch,
             (SELECT count(*) FROM made)::int AS deliveries`),
  );
  return { events: row?.events ?? 0, deliveries: row?.deliveries ?? 0, full: (row?.events ?? 0) >= (row?.batch ?? 1) };
}
