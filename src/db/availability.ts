import postgres from "postgres";
import { deadline, every } from "../lib/timers";

// How often the database is asked whether it answers, how long an answer may take, and how many
// unanswered probes in a row make it unavailable: one slow answer (a busy CPU, a pause) is not an
// outage. A failed connection says so at once (`lost`); a silent database is known within about
// three seconds, meanwhile each request still answers within its own deadline; the end of an
// outage is known within half a second.
const PROBE_INTERVAL_MS = 500;
const PROBE_TIMEOUT_MS = 1000;
const UNANSWERED_PROBES = 2;

/**
 * The two ways code waits out a database that does not answer, side by side so that a caller picks
 * one instead of inventing a third:
 * - `answer`: a request has a client waiting. It is refused at once while the database is known to
 *   be out of reach, and otherwise answered within `withinMs` or with a 503, so that every answer
 *   fits in the two seconds a client waits at most (src/payouts/service.ts `guarded`).
 * - `persist`: a worker's claim or outcome has nobody waiting but must not be lost. It waits for
 *   the database and writes again as soon as it answers (a pause of `rewritePauseMs` between
 *   tries), for `forMs`; then the message goes back to the broker's retry queue
 *   (src/payouts/processing/processor.ts `persist`).
 */
export const FAULT_POLICIES = {
  answer: { withinMs: 1800 },
  persist: { forMs: 30_000, rewritePauseMs: 250 },
} as const;

/**
 * Whether the database answers right now, as a circuit breaker: while it does not, requests are
 * refused at once instead of queueing behind dead connections, and workers stop claiming.
 */
export type Availability = {
  readonly available: boolean;
  /** A query just failed for want of the database: refuse further work until the probe says otherwise. */
  lost(): void;
  /** Resolves true as soon as the database answers again, false after `timeoutMs`. */
  whenAvailable(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
};

/** Always available: the embedded database lives in this process. */
export const alwaysAvailable: Availability = {
  available: true,
  lost() {},
  whenAvailable: async () => true,
  stop: async () => {},
};

/**
 * Probes on a connection of its own, so that a busy pool never makes a healthy database look
 * down. A probe that gets no answer drops its connection: the next one connects afresh rather
 * than waiting behind a connection that may never answer again.
 */
export function probeAvailability(url: string, applicationName: string): Availability {
  let available = true;
  let unanswered = 0;
  let client: postgres.Sql | undefined;
  const waiters = new Set<(up: boolean) => void>();
  const wakeAll = (up: boolean) => {
    for (const wake of waiters) wake(up);
    waiters.clear();
  };

  const settle = (up: boolean) => {
    unanswered = up ? 0 : unanswered + 1;
    if (up) {
      available = true;
      wakeAll(true);
    } else if (unanswered >= UNANSWERED_PROBES) available = false;
  };

  const probe = async () => {
    client ??= postgres(url, {
      max: 1,
      connect_timeout: PROBE_TIMEOUT_MS / 1000,
      idle_timeout: 60,
      onnotice: () => {},
      connection: { application_name: `${applicationName}-probe` },
    });
    const current = client;
    const answered = await deadline(Promise.resolve(current`select 1`), PROBE_TIMEOUT_MS).then(
      () => true,
      () => false,
    );
    if (!answered && client === current) {
      client = undefined;
      void current.end({ timeout: 0 }).catch(() => {});
    }
    settle(answered);
  };

  // A probe settles its own failures (an unanswered probe is its result): the loop logs nothing.
  const probing = every(PROBE_INTERVAL_MS, probe, { name: "database probe", firstAfterMs: PROBE_INTERVAL_MS });

  return {
    get available() {
      return available;
    },
    lost() {
      available = false;
    },
    whenAvailable(timeoutMs) {
      if (available) return Promise.resolve(true);
      return new Promise((resolve) => {
        const wake = (up: boolean) => {
          clearTimeout(giveUp);
          resolve(up);
        };
        const giveUp = setTimeout(() => {
          waiters.delete(wake);
          resolve(false);
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    async stop() {
      // Ending the client first ends a probe in flight at once, rather than after its timeout.
      const ended = probing.stop();
      wakeAll(false);
      await client?.end({ timeout: 1 }).catch(() => {});
      await ended;
    },
  };
}
