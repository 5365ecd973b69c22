import type { Db } from "../../db/client";
import { toEvent } from "../../events/service";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/log";
import { every } from "../../lib/timers";
import { webhookAttemptDuration, webhookAttempts, webhookDeliveriesPending, webhookFanoutPending } from "../../metrics";
import { type SecretBox, UnreadableSecret } from "../secret-box";
import { FANOUT_DELIVERIES, fanOut } from "./fanout";
import { type Outcome, send } from "./send";
import { type Claimed, deliveryStore } from "./store";

export type DeliveryOptions = {
  timeoutMs: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  disableAfter: number;
  allowPrivateNetworks: boolean;
  /** WEBHOOK_ALLOW_HTTP: an endpoint stored with an http URL is sent to only while this allows it. */
  allowHttp: boolean;
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

const PENDING_GAUGE_EVERY_MS = 5000;

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
  {
    db,
    box,
    clock,
    log,
    payoutsInFlight = () => 0,
  }: {
    db: Db;
    /** Opens the endpoints' sealed signing secrets, just before each attempt signs with them. */
    box: SecretBox;
    clock: Clock;
    log: Logger;
    /** Payouts this process is processing now (its worker threads'); the loop yields to them. */
    payoutsInFlight?: () => number;
  },
  options: DeliveryOptions,
) {
  const inFlight = new Set<Promise<void>>();
  /** Attempts in flight in this process, by endpoint: the claim gives each at most perEndpoint. */
  const inFlightTo = new Map<string, number>();
  let lastGauge = 0;
  const store = deliveryStore({ db }, options);

  /** `sent` is called once the request to the endpoint has ended, before its outcome is written. */
  const attempt = async (claimed: Claimed, sent: () => void) => {
    const started = performance.now();
    const body = JSON.stringify(toEvent(claimed.event));
    let result: Outcome;
    try {
      result = await sendSealed(claimed, body);
    } finally {
      sent();
    }
    const seconds = (performance.now() - started) / 1000;
    webhookAttempts.inc({ outcome: result.outcome });
    webhookAttemptDuration.observe(seconds, { outcome: result.outcome });
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
      const delivery = await store.finish(claimed, result);
      (result.outcome === "success" ? log.info : log.warn)("webhook attempt", { ...fields, delivery });
    } catch (err) {
      // The lease expires and the delivery is attempted again: at least once, never lost.
      log.error("webhook attempt not recorded; it will be attempted again", { ...fields, err });
    }
  };

  /**
   * The attempt, signed with the endpoint's secrets opened here, in memory only for this attempt.
   * A secret that does not open (its key was dropped from WEBHOOK_SECRET_KEYS too early) is a
   * failed attempt that names the key id: nothing unsigned is ever sent.
   */
  const sendSealed = async (claimed: Claimed, body: string): Promise<Outcome> => {
    let secrets: string[];
    try {
      secrets = claimed.secrets.map((sealed) => box.open(sealed, claimed.endpoint_id));
    } catch (err) {
      if (!(err instanceof UnreadableSecret)) throw err;
      return { outcome: "unreadable_secret", status: null, error: err.message };
    }
    return send({ url: claimed.url, secrets, eventId: claimed.event.id }, body, options, clock);
  };

  const updatePendingGauge = async () => {
    if (clock.now() - lastGauge < PENDING_GAUGE_EVERY_MS) return;
    lastGauge = clock.now();
    const pending = await store.pending();
    webhookDeliveriesPending.set(pending.deliveries);
    webhookFanoutPending.set(pending.events);
  };

  const busy = () => options.busyRate > 0 && payoutsInFlight() > 0;

  // More may be due when the last claim found any, or an endpoint was at its bound: claim again as soon as half the slots are free,
  // or half of an endpoint's (a fast receiver's backlog goes out at its own pace, not a slotful per
  // poll interval); while payouts are in flight, only at the busy pace.
  let moreDue = false;
  // An attempt that ends while a pass runs asks for the pass after it to come at once (wake).
  const claimSoon = (endpointId?: string) => {
    if (!moreDue || busy()) return;
    const endpointHalfFree = endpointId !== undefined && (inFlightTo.get(endpointId) ?? 0) <= options.perEndpoint / 2;
    if (inFlight.size > options.concurrency / 2 && !endpointHalfFree) return;
    loop.wake();
  };

  const start = (claimed: Claimed) => {
    const endpointId = claimed.endpoint_id;
    inFlightTo.set(endpointId, (inFlightTo.get(endpointId) ?? 0) + 1);
    // The endpoint's slot is freed when its request ends, not when the outcome is written: the
    // bound is on requests to the endpoint, and a commit per attempt held in it made one healthy
    // endpoint's backlog drain at perEndpoint per (claim + request + commit), about 500/s. The
    // delivery stays leased until its outcome is written, so it is not claimed again meanwhile;
    // the process's slot (inFlight) is held until then.
    const sent = () => {
      const left = (inFlightTo.get(endpointId) ?? 1) - 1;
      if (left > 0) inFlightTo.set(endpointId, left);
      else inFlightTo.delete(endpointId);
      claimSoon(endpointId);
    };
    const running: Promise<void> = attempt(claimed, sent).finally(() => {
      inFlight.delete(running);
      claimSoon();
    });
    inFlight.add(running);
  };

  // When the last fan-out step ran (monotonic), and whether it left events waiting.
  let lastFanOut = Number.NEGATIVE_INFINITY;
  let fanOutBehind = false;

  /** One pass: a fan-out step when one is due, then a claim; returns when the next pass is due. */
  const pass = async (): Promise<number> => {
    const yielding = busy();
    const step = Math.ceil((options.busyRate * BUSY_STEP_MS) / 1000);
    // Events first become deliveries, then due deliveries are claimed: one bounded step of each per
    // pass, so neither starves the other. While payouts are in flight, the fan-out makes no more
    // deliveries per step than may be attempted in it. A step that found the fan-out caught up is
    // not repeated before a poll interval has passed, however often attempts wake the loop: one
    // endpoint's backlog is claimed in passes of perEndpoint each, and an empty fan-out statement
    // in each was a fifth of the pass's time (measured).
    if (fanOutBehind || performance.now() - lastFanOut >= options.pollIntervalMs) {
      lastFanOut = performance.now();
      try {
        fanOutBehind = (await fanOut(db, yielding ? step : FANOUT_DELIVERIES)).full;
      } catch (err) {
        fanOutBehind = false;
        log.warn("could not fan out webhook events; trying again", { err });
      }
    }
    try {
      await updatePendingGauge();
      const free = options.concurrency - inFlight.size;
      const allowed = yielding ? Math.min(free, step) : free;
      if (allowed > 0) {
        const claimed = await store.claim(allowed, inFlightTo);
        // None claimed may only mean every endpoint with due deliveries is at its bound here.
        moreDue = claimed.length > 0 || [...inFlightTo.values()].some((n) => n >= options.perEndpoint);
        for (const c of claimed) start(c);
      }
    } catch (err) {
      log.warn("could not claim webhook deliveries; trying again", { err });
    }
    return fanOutBehind || (yielding && moreDue) ? (yielding ? BUSY_STEP_MS : 0) : options.pollIntervalMs;
  };

  // stop() waits for the pass in flight, so that no attempt it claims starts unseen.
  const loop = every(options.pollIntervalMs, pass, { name: "webhook delivery pass", log });
  return {
    /** Stops claiming and waits for the attempts in flight (each bounded by WEBHOOK_TIMEOUT_MS). */
    async stop() {
      await loop.stop();
      await Promise.allSettled([...inFlight]);
    },
  };
}
