import { type SQL, sql } from "drizzle-orm";
import { type Db, resultRows } from "../../db/client";
import { isDatabaseUnavailable } from "../../db/errors";
import type { PayoutEventRow } from "../../db/schema";
import { retryDelayMs } from "../../lib/backoff";
import { batched } from "../../lib/batched";
import type { Outcome } from "./send";

/** updated_by of an endpoint the service itself changed: disabled after failed deliveries. */
const SYSTEM_ACTOR = "system";

/** Retries wait longer and longer, but never more than this. */
const MAX_RETRY_DELAY_MS = 10 * 3_600_000;
/** Beyond WEBHOOK_TIMEOUT_MS, what the lease of an attempt adds: its DNS check (at most 5 s) and room to spare. */
const LEASE_MARGIN_MS = 15_000;

/**
 * The claim of due attempts, fair between endpoints: each enabled endpoint with due deliveries
 * takes its share of the `limit` free slots, at most `perEndpoint` minus what this process already
 * has in flight to it, its own oldest first; endpoints with the fewest in flight here come first.
 * So one endpoint's backlog, however old and large, is never in front of another's deliveries, and
 * a slow receiver holds at most `perEndpoint` slots. Each endpoint's due deliveries are read from
 * webhook_deliveries_pending_idx (endpoint_id, next_attempt_at), a few rows each.
 */
export function claimStatement(
  limit: number,
  perEndpoint: number,
  inFlight: Map<string, number>,
  leaseSeconds: number,
) {
  const due = (alias: string) =>
    sql.raw(`
    ${alias}.status = 'pending' AND ${alias}.next_attempt_at <= now()
    AND (${alias}.locked_until IS NULL OR ${alias}.locked_until <= now())`);
  return sql`
    WITH candidates AS MATERIALIZED (
      SELECT e.id, ${perEndpoint}::int - coalesce((${JSON.stringify(Object.fromEntries(inFlight))}::jsonb ->> e.id::text)::int, 0) AS room
      FROM webhook_endpoints e
      -- A probe of the index per endpoint (LIMIT 1: never a join over every due delivery).
      CROSS JOIN LATERAL (SELECT FROM webhook_deliveries p WHERE p.endpoint_id = e.id AND ${due("p")} LIMIT 1) AS has_due
      WHERE e.enabled
    ), served AS (
      SELECT id, least(room, ceil(${limit}::numeric / (SELECT count(*) FROM candidates WHERE room > 0)))::int AS share
      FROM candidates WHERE room > 0
      ORDER BY room DESC, random()
      LIMIT ${limit}
    )
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, last_attempt_at = now(),
        locked_until = now() + make_interval(secs => ${leaseSeconds})
    FROM (
      SELECT due.id FROM served
      CROSS JOIN LATERAL (
        SELECT p.id FROM webhook_deliveries p
        WHERE p.endpoint_id = served.id AND ${due("p")}
        ORDER BY p.next_attempt_at
        LIMIT served.share
        FOR UPDATE OF p SKIP LOCKED
      ) AS due
      LIMIT ${limit}
    ) AS due, webhook_endpoints e, payout_events ev
    WHERE d.id = due.id AND e.id = d.endpoint_id AND ev.id = d.event_id
    RETURNING d.id AS delivery_id, d.endpoint_id, d.attempts AS attempt, e.url, e.secret,
              CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
              ev.id, ev.type, ev.payout_id, ev.attempt AS event_attempt, api_instant(ev.created_at) AS created_at, ev.data,
              ev.actor`;
}

export type Claimed = {
  delivery_id: string;
  endpoint_id: string;
  attempt: number;
  url: string;
  /** Sealed (src/webhooks/secret-box.ts): opened only by the attempt that signs with them. */
  secrets: string[];
  event: PayoutEventRow;
};

/** What the store needs of the delivery options. */
type StoreOptions = {
  timeoutMs: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  disableAfter: number;
  perEndpoint: number;
};

/**
 * The deliveries' rows: claiming due attempts under a lease, and writing each attempt's outcome
 * only while the claim still holds.
 */
export function deliveryStore({ db }: { db: Db }, options: StoreOptions) {
  const leaseSeconds = (options.timeoutMs + LEASE_MARGIN_MS) / 1000;

  /** Claims at most `limit` due attempts, at most perEndpoint minus `inFlightTo` to each endpoint. */
  const claim = async (limit: number, inFlightTo: Map<string, number>): Promise<Claimed[]> => {
    const rows = resultRows<{
      delivery_id: string;
      endpoint_id: string;
      attempt: number;
      url: string;
      secret: string;
      previous_secret: string | null;
      id: string;
      type: PayoutEventRow["type"];
      payout_id: string;
      event_attempt: number | null;
      created_at: string;
      data: unknown;
      actor: string | null;
    }>(await db.execute(claimStatement(limit, options.perEndpoint, inFlightTo, leaseSeconds)));
    return rows.map((r) => ({
      delivery_id: r.delivery_id,
      endpoint_id: r.endpoint_id,
      attempt: r.attempt,
      url: r.url,
      secrets: r.previous_secret ? [r.secret, r.previous_secret] : [r.secret],
      event: {
        id: r.id,
        type: r.type,
        payoutId: r.payout_id,
        attempt: r.event_attempt,
        createdAt: new Date(r.created_at),
        data: typeof r.data === "string" ? JSON.parse(r.data) : r.data,
        actor: r.actor,
      },
    }));
  };

  // Successes finishing together are written together: one statement and one commit for the
  // group (a failure, rarer, is written on its own below). Each row still only while its claim's
  // attempt number matches and it is pending.
  const succeed = batched(
    async (outcomes: { claimed: Claimed; status: number }[]) => {
      const rows = resultRows<{ id: string }>(
        await db.execute(sql`
          WITH done AS (
            UPDATE webhook_deliveries d SET status = 'succeeded', locked_until = NULL,
                   last_response_status = o.status, last_error = NULL
            FROM jsonb_to_recordset(${JSON.stringify(
              outcomes.map((o) => ({ id: o.claimed.delivery_id, attempts: o.claimed.attempt, status: o.status })),
            )}::jsonb) AS o(id uuid, attempts integer, status integer)
            WHERE d.id = o.id AND d.attempts = o.attempts AND d.status = 'pending'
            RETURNING d.id, d.endpoint_id),
          run_ended AS (
            UPDATE webhook_endpoints SET consecutive_failures = 0
            WHERE id IN (SELECT endpoint_id FROM done) AND consecutive_failures <> 0)
          SELECT id FROM done`),
      );
      const done = new Set(rows.map((r) => r.id));
      return outcomes.map((o) => done.has(o.claimed.delivery_id));
    },
    { maxSize: 200, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable },
  );

  /**
   * The outcome of one attempt, conditional on the claim (its attempt number and status): a
   * delivery retried or deleted meanwhile is not overwritten. A delivery that ends failed adds
   * one to its endpoint's run of failures, which disables it at WEBHOOK_DISABLE_AFTER; a success
   * ends the run. Returns what the delivery became, or "superseded" when nothing was written.
   */
  const finish = async (claimed: Claimed, result: Outcome) => {
    if (result.outcome === "success") {
      return (await succeed({ claimed, status: result.status })) ? "succeeded" : "superseded";
    }
    const same = sql`id = ${claimed.delivery_id} AND attempts = ${claimed.attempt} AND status = 'pending'`;
    // Whether the outcome was written: not when the delivery was taken over, retried or deleted meanwhile.
    const written = async (statement: SQL) => (resultRows<{ n: number }>(await db.execute(statement))[0]?.n ?? 0) > 0;
    let delivery: "pending" | "failed";
    let statement: SQL;
    if (claimed.attempt < options.maxAttempts) {
      delivery = "pending";
      const delayMs = retryDelayMs(options.retryBaseDelayMs, claimed.attempt, MAX_RETRY_DELAY_MS);
      // Due by the database's clock, the one every process's claim compares next_attempt_at with.
      statement = sql`
        WITH done AS (
          UPDATE webhook_deliveries SET locked_until = NULL,
                 next_attempt_at = now() + make_interval(secs => ${delayMs / 1000}),
                 last_response_status = ${result.status}, last_error = ${result.error}
          WHERE ${same} RETURNING id)
        SELECT count(*)::int AS n FROM done`;
    } else {
      delivery = "failed";
      const disables = sql`e.enabled AND e.consecutive_failures + 1 >= ${options.disableAfter}`;
      statement = sql`
        WITH done AS (
          UPDATE webhook_deliveries SET status = 'failed', locked_until = NULL,
                 last_response_status = ${result.status}, last_error = ${result.error}
          WHERE ${same} RETURNING endpoint_id),
        counted AS (
          UPDATE webhook_endpoints e
          SET consecutive_failures = e.consecutive_failures + 1,
              enabled = e.enabled AND NOT (${disables}),
              disabled_reason = CASE WHEN ${disables}
                                     THEN ${`${options.disableAfter} deliveries in a row failed; the last: ${result.error}`}
                                     ELSE e.disabled_reason END,
              disabled_at = CASE WHEN ${disables} THEN date_trunc('milliseconds', now()) ELSE e.disabled_at END,
              updated_at = CASE WHEN ${disables} THEN now() ELSE e.updated_at END,
              updated_by = CASE WHEN ${disables} THEN ${SYSTEM_ACTOR} ELSE e.updated_by END
          FROM done WHERE e.id = done.endpoint_id)
        SELECT count(*)::int AS n FROM done`;
    }
    return (await written(statement)) ? delivery : "superseded";
  };

  /** How many deliveries are pending, and how many events wait to be fanned out. */
  const pending = async () => {
    const [row] = resultRows<{ deliveries: number; events: number }>(
      await db.execute(sql`
        SELECT (SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending') AS deliveries,
               (SELECT count(*)::int FROM webhook_fanout) AS events`),
    );
    return { deliveries: row?.deliveries ?? 0, events: row?.events ?? 0 };
  };

  return { claim, finish, pending };
}
