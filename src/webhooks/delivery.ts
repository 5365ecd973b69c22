import { type SQL, sql } from "drizzle-orm";
import { type Db, resultRows } from "../db/client";
import type { PayoutEventRow } from "../db/schema";
import { toEvent } from "../events/service";
import { batched } from "../lib/batched";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { webhookDeliveries, webhookDeliveriesPending, webhookDeliveryDuration } from "../metrics";
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
    }>(
      await db.execute(sql`
        UPDATE webhook_deliveries d
        SET attempts = d.attempts + 1, last_attempt_at = now(),
            locked_until = now() + make_interval(secs => ${leaseSeconds})
        FROM (
          SELECT due.id FROM webhook_deliveries due
          JOIN webhook_endpoints e ON e.id = due.endpoint_id AND e.enabled
          WHERE due.status = 'pending' AND due.next_attempt_at <= now()
            AND (due.locked_until IS NULL OR due.locked_until <= now())
          ORDER BY due.next_attempt_at
          LIMIT ${limit}
          FOR UPDATE OF due SKIP LOCKED
        ) AS due, webhook_endpoints e, payout_events ev
        WHERE d.id = due.id AND e.id = d.endpoint_id AND ev.id = d.event_id
        RETURNING d.id AS delivery_id, d.endpoint_id, d.attempts AS attempt, e.url, e.secret,
                  CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
                  ev.id, ev.type, ev.payout_id, ev.attempt AS event_attempt, api_instant(ev.created_at) AS created_at, ev.data`),
    );
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
    const [row] = resultRows<{ n: number }>(
      await db.execute(sql`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`),
    );
    webhookDeliveriesPending.set(row?.n ?? 0);
  };

  const busy = () => options.busyRate > 0 && payoutsInFlight() > 0;

  // More were due when the last claim filled every free slot: claim again as soon as half the
  // slots are free, instead of waiting out the poll interval with the slots empty; while payouts
  // are in flight, only at the busy pace.
  let moreDue = false;
  const claimSoon = () => {
    if (stopped || !moreDue || busy() || timer === undefined || inFlight.size > options.concurrency / 2) return;
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

  const pass = async () => {
    timer = undefined;
    if (stopped) return;
    const yielding = busy();
    try {
      await updatePendingGauge();
      const free = options.concurrency - inFlight.size;
      const allowed = yielding ? Math.min(free, Math.ceil((options.busyRate * BUSY_STEP_MS) / 1000)) : free;
      if (allowed > 0) {
        const claimed = await claim(allowed);
        moreDue = claimed.length === allowed;
        for (const c of claimed) {
          const running: Promise<void> = attempt(c).finally(() => {
            inFlight.delete(running);
            claimSoon();
          });
          inFlight.add(running);
        }
      }
    } catch (err) {
      log.warn("could not claim webhook deliveries; trying again", { err });
    }
    if (!stopped) timer = setTimeout(tick, yielding && moreDue ? BUSY_STEP_MS : options.pollIntervalMs);
    claimSoon();
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
