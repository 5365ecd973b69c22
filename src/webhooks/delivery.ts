import { type SQL, sql } from "drizzle-orm";
import { type Db, resultRows } from "../db/client";
import type { PayoutEventRow } from "../db/schema";
import { toEvent } from "../events/service";
import { batched } from "../lib/batched";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { webhookDeliveries, webhookDeliveriesPending, webhookDeliveryDuration, webhookFanoutPending } from "../metrics";
import { retryDelayMs } from "../payouts/processing/retry-policy";
import { refusedAddress } from "./addresses";
import { signatureHeader } from "./signing";

export type DeliveryOptions = {
  timeoutMs: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  disableAfter: number;
  allowPrivateNetworks: boolean;
  /** Attempts in flight at once in this process. */
  concurrency: number;
  /** Attempts in flight at once in this process to one endpoint (WEBHOOK_ENDPOINT_CONCURRENCY). */
  perEndpoint: number;
  /** How often due deliveries are looked for while none are. */
  pollIntervalMs: number;
  /**
   * Attempts started per second at most while this process has payouts in flight (0: no limit):
   * payouts first, webhooks with what they leave. Without payouts in flight there is no limit.
   */
  busyRate: number;
};

/** While payouts are in flight, attempts are started in steps of this, a tenth of busyRate each. */
const BUSY_STEP_MS = 100;

/** Retries wait longer and longer, but never more than this. */
const MAX_RETRY_DELAY_MS = 10 * 3_600_000;
/** Beyond WEBHOOK_TIMEOUT_MS, what the lease of an attempt adds: its DNS check (at most 5 s) and room to spare. */
const LEASE_MARGIN_MS = 15_000;
const PENDING_GAUGE_EVERY_MS = 5000;
/** At most this many deliveries made by one fan-out statement (whole events: at least one). */
const FANOUT_DELIVERIES = 5000;
/** At most this many events fanned out by one statement. */
const FANOUT_EVENTS = 500;

/**
 * One step of the fan-out: takes the oldest events of webhook_fanout (written by the events
 * trigger in each event's transaction, drizzle/0011_webhook_fanout.sql), creates one delivery per
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
              ev.id, ev.type, ev.payout_id, ev.attempt AS event_attempt, api_instant(ev.created_at) AS created_at, ev.data`;
}

type Claimed = {
  delivery_id: string;
  endpoint_id: string;
  attempt: number;
  url: string;
  secrets: string[];
  event: PayoutEventRow;
};

type Outcome =
  | { outcome: "success"; status: number }
  | { outcome: "http_error" | "timeout" | "network_error" | "refused_address"; status: number | null; error: string };

/**
 * Delivers webhooks: claims due deliveries and POSTs each to its endpoint, Standard Webhooks
 * signed. Runs in the worker role and role `all`, on a pool of its own, so that a slow or dead
 * receiver holds only these connections and these slots, never a payout's.
 *
 * No two attempts of one delivery run at once, across processes and crashes: an attempt is
 * claimed with FOR UPDATE SKIP LOCKED and a lease (locked_until) longer than the attempt may
 * last, and its outcome is written only while the claim's attempt number still matches. A process
 * killed mid-attempt leaves the lease to expire; the delivery is then claimed again.
 */
export function startDeliveries(
  db: Db,
  options: DeliveryOptions,
  clock: Clock,
  log: Logger,
  /** Payouts this process is processing now (its worker threads'); the loop yields to them. */
  payoutsInFlight: () => number = () => 0,
) {
  const inFlight = new Set<Promise<void>>();
  /** Attempts in flight in this process, by endpoint: the claim gives each at most perEndpoint. */
  const inFlightTo = new Map<string, number>();
  let stopped = false;
  let timer: Timer | undefined;
  let lastGauge = 0;
  const leaseSeconds = (options.timeoutMs + LEASE_MARGIN_MS) / 1000;

  const claim = async (limit: number): Promise<Claimed[]> => {
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
      },
    }));
  };

  const send = async (claimed: Claimed, body: string): Promise<Outcome> => {
    const url = new URL(claimed.url);
    const refused = await refusedAddress(url, options.allowPrivateNetworks);
    if (refused) return { outcome: "refused_address", status: null, error: `refused address: the url ${refused}` };
    const timestamp = Math.floor(clock.now() / 1000);
    try {
      const response = await fetch(url, {
        method: "POST",
        body,
        headers: {
          "content-type": "application/json",
          "user-agent": "payouts-webhooks",
          "webhook-id": claimed.event.id,
          "webhook-timestamp": `${timestamp}`,
          "webhook-signature": signatureHeader(claimed.secrets, claimed.event.id, timestamp, body),
        },
        // A redirect is the receiver's answer, not a new address to send the payout's data to.
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      // The answer's body is not needed; not reading it would hold the connection.
      await response.body?.cancel().catch(() => {});
      if (response.status >= 200 && response.status < 300) return { outcome: "success", status: response.status };
      return { outcome: "http_error", status: response.status, error: `HTTP ${response.status}` };
    } catch (error) {
      const name = (error as Error).name;
      if (name === "TimeoutError" || name === "AbortError") {
        return { outcome: "timeout", status: null, error: `no answer within ${options.timeoutMs} ms` };
      }
      const code = (error as { code?: string }).code;
      return { outcome: "network_error", status: null, error: `connection failed${code ? `: ${code}` : ""}` };
    }
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
    { maxSize: 200, maxInFlight: 2 },
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
              updated_at = CASE WHEN ${disables} THEN now() ELSE e.updated_at END
          FROM done WHERE e.id = done.endpoint_id)
        SELECT count(*)::int AS n FROM done`;
    }
    return (await written(statement)) ? delivery : "superseded";
  };

  const attempt = async (claimed: Claimed) => {
    const started = performance.now();
    const body = JSON.stringify(toEvent(claimed.event));
    const result = await send(claimed, body);
    const seconds = (performance.now() - started) / 1000;
    webhookDeliveries.inc({ outcome: result.outcome });
    webhookDeliveryDuration.observe(seconds, { outcome: result.outcome });
    const fields = {
      event_id: claimed.event.id,
      endpoint_id: claimed.endpoint_id,
      delivery_id: claimed.delivery_id,
      payout_id: claimed.event.payoutId,
      attempt: claimed.attempt,
      outcome: result.outcome,
      status: result.status,
      duration_ms: Math.round(seconds * 10_000) / 10,
      ...(result.outcome === "success" ? {} : { error: result.error }),
    };
    try {
      const delivery = await finish(claimed, result);
      (result.outcome === "success" ? log.info : log.warn)("webhook attempt", { ...fields, delivery });
    } catch (err) {
      // The lease expires and the delivery is attempted again: at least once, never lost.
      log.error("webhook attempt not recorded; it will be attempted again", { ...fields, err });
    }
  };

  const updatePendingGauge = async () => {
    if (clock.now() - lastGauge < PENDING_GAUGE_EVERY_MS) return;
    lastGauge = clock.now();
    const [row] = resultRows<{ deliveries: number; events: number }>(
      await db.execute(sql`
        SELECT (SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending') AS deliveries,
               (SELECT count(*)::int FROM webhook_fanout) AS events`),
    );
    webhookDeliveriesPending.set(row?.deliveries ?? 0);
    webhookFanoutPending.set(row?.events ?? 0);
  };

  const busy = () => options.busyRate > 0 && payoutsInFlight() > 0;

  // More may be due when the last claim found any, or an endpoint was at its bound: claim again as soon as half the slots are free,
  // or half of an endpoint's (a fast receiver's backlog goes out at its own pace, not a slotful per
  // poll interval); while payouts are in flight, only at the busy pace.
  let moreDue = false;
  // An attempt that ends while a pass runs asks for the pass after it to come at once.
  let soon = false;
  const claimSoon = (endpointId?: string) => {
    if (stopped || !moreDue || busy()) return;
    const endpointHalfFree = endpointId !== undefined && (inFlightTo.get(endpointId) ?? 0) <= options.perEndpoint / 2;
    if (inFlight.size > options.concurrency / 2 && !endpointHalfFree) return;
    if (timer === undefined) {
      soon = true;
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(tick, 0);
  };

  // The pass running now, if any: stop() waits for it, so that no attempt it claims starts unseen.
  let ticking: Promise<void> | undefined;
  const tick = () => {
    ticking = pass().finally(() => {
      ticking = undefined;
    });
  };

  const start = (claimed: Claimed) => {
    const endpointId = claimed.endpoint_id;
    inFlightTo.set(endpointId, (inFlightTo.get(endpointId) ?? 0) + 1);
    const running: Promise<void> = attempt(claimed).finally(() => {
      inFlight.delete(running);
      const left = (inFlightTo.get(endpointId) ?? 1) - 1;
      if (left > 0) inFlightTo.set(endpointId, left);
      else inFlightTo.delete(endpointId);
      claimSoon(endpointId);
    });
    inFlight.add(running);
  };

  const pass = async () => {
    timer = undefined;
    if (stopped) return;
    const yielding = busy();
    const step = Math.ceil((options.busyRate * BUSY_STEP_MS) / 1000);
    // Events first become deliveries, then due deliveries are claimed: one bounded step of each per
    // pass, so neither starves the other. While payouts are in flight, the fan-out makes no more
    // deliveries per step than may be attempted in it.
    let fanOutBehind = false;
    try {
      fanOutBehind = (await fanOut(db, yielding ? step : FANOUT_DELIVERIES)).full;
    } catch (err) {
      log.warn("could not fan out webhook events; trying again", { err });
    }
    try {
      await updatePendingGauge();
      const free = options.concurrency - inFlight.size;
      const allowed = yielding ? Math.min(free, step) : free;
      if (allowed > 0) {
        const claimed = await claim(allowed);
        // None claimed may only mean every endpoint with due deliveries is at its bound here.
        moreDue = claimed.length > 0 || [...inFlightTo.values()].some((n) => n >= options.perEndpoint);
        for (const c of claimed) start(c);
      }
    } catch (err) {
      log.warn("could not claim webhook deliveries; trying again", { err });
    }
    if (!stopped) {
      const again = fanOutBehind || soon;
      soon = false;
      const next = again || (yielding && moreDue) ? (yielding ? BUSY_STEP_MS : 0) : options.pollIntervalMs;
      timer = setTimeout(tick, next);
    }
  };

  timer = setTimeout(tick, 0);
  return {
    /** Stops claiming and waits for the attempts in flight (each bounded by WEBHOOK_TIMEOUT_MS). */
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ticking;
      await Promise.allSettled([...inFlight]);
    },
  };
}

export type Deliveries = ReturnType<typeof startDeliveries>;
