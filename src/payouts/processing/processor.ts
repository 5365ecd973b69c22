import { and, eq, sql } from "drizzle-orm";
import { type Availability, FAULT_POLICIES } from "../../db/availability";
import type { Db } from "../../db/client";
import { DatabaseUnavailableError, isDatabaseUnavailable } from "../../db/errors";
import { type PayoutRow, payouts } from "../../db/schema";
import type { Payment, PayoutGateway } from "../../gateway/port";
import { batched } from "../../lib/batched";
import type { Clock } from "../../lib/clock";
import type { Logger } from "../../lib/log";
import { gatewayCallDuration, payoutRetries } from "../../metrics";
import type { HandlerResult, QueueMessage } from "../../queue/port";
import { recordStatusChange } from "../status";
import { asTemporaryFailure, nextAttemptAfterMs, type RetryPolicy, type TemporaryFailure } from "./retry-policy";

// A claim or an outcome that failed for want of the database is written again by its own worker
// as soon as the database answers, for a while; then the message goes to the retry queue.
const { forMs: DATABASE_WAIT_MS, rewritePauseMs: REWRITE_PAUSE_MS } = FAULT_POLICIES.persist;

/** What a claim returns: what the gateway call and the outcome's write need, no more. */
type Claimed = Pick<PayoutRow, "id" | "amount" | "currency" | "recipientDetails" | "status" | "attempts">;

/** At most `size` holders at once; the others wait, first come first served. */
function slots(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  return {
    acquire: (): Promise<void> | undefined => {
      if (free > 0) {
        free--;
        return undefined;
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    release: () => {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}

/**
 * One message, one payout: claim it, pay it through the gateway, record the outcome. Every status
 * write is conditional on the status it expects, so a message that arrives twice, late, or for a
 * payout that was cancelled or deleted finds nothing to do. The caller acks only after this
 * returns, that is after the outcome is committed.
 *
 * At most `maxCalls` gateway calls run at once (WORKER_CONCURRENCY). The consumer holds more
 * messages than that, so that the claims and outcomes of some overlap the calls of others: a call
 * that ends is followed at once by one already claimed, instead of by a claim and an outcome
 * written for a whole cohort of payouts (bench/RESULTS.md, the latency-bound case).
 */
type ProcessorDeps = {
  db: Db;
  availability: Availability;
  gateway: PayoutGateway;
  clock: Clock;
  log: Logger;
};

export function createProcessor(
  { db, availability, gateway, clock, log }: ProcessorDeps,
  options: RetryPolicy & { maxCalls?: number },
) {
  const calls = slots(options.maxCalls ?? Number.POSITIVE_INFINITY);

  /**
   * Runs a write until it gets through: while the database is gone, nothing is claimed or written
   * (the message waits, unacked); once it answers, the write runs again. `again` tells the write
   * that an earlier run may have committed without its answer arriving.
   */
  const persist = async <T>(write: (again: boolean) => Promise<T>): Promise<T> => {
    const giveUpAt = clock.now() + DATABASE_WAIT_MS;
    for (let again = false; ; again = true) {
      const waitMs = giveUpAt - clock.now();
      if (!availability.available && !(waitMs > 0 && (await availability.whenAvailable(waitMs)))) {
        throw new DatabaseUnavailableError(`the database has not answered for ${DATABASE_WAIT_MS} ms`);
      }
      try {
        return await write(again);
      } catch (error) {
        if (!isDatabaseUnavailable(error) || clock.now() >= giveUpAt) throw error;
        availability.lost();
        await Bun.sleep(REWRITE_PAUSE_MS);
      }
    }
  };

  // Outcomes are conditional on the claim's attempt too: once a redelivered message has taken the
  // payout over, only the new holder writes the outcome. A taken-over worker whose call failed
  // must not write FAILED while the new holder's call may still move the money.
  const fail = async (claimed: Claimed, failureReason: string) => {
    const [row] = await db
      .update(payouts)
      .set({ status: "FAILED", failureReason, processedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(payouts.id, claimed.id), eq(payouts.status, "PROCESSING"), eq(payouts.attempts, claimed.attempts)))
      .returning({ id: payouts.id });
    return row !== undefined;
  };

  // Claims and completions of messages in flight together share one statement and one commit.
  // Both are prepared once; a batch travels as one parameter.
  const claimMany = db
    .update(payouts)
    .set({ status: "PROCESSING", attempts: sql`${payouts.attempts} + 1`, claimedAt: sql`now()`, updatedAt: sql`now()` })
    .where(
      // A NEW payout is claimed by anyone; a PROCESSING one only by a message that says its holder
      // is gone (a broker redelivery, a scheduled retry, recovery at start-up).
      // One index condition on the ids, the status a filter (an OR of two id lists planned worse).
      sql`${payouts.id} = ANY(string_to_array(${sql.placeholder("ids")}, ',')::uuid[])
        AND (${payouts.status} = 'NEW'
             OR (${payouts.status} = 'PROCESSING'
                 AND ${payouts.id} = ANY(string_to_array(${sql.placeholder("resumed")}, ',')::uuid[])))`,
    )
    .returning({
      id: payouts.id,
      amount: payouts.amount,
      currency: payouts.currency,
      recipientDetails: payouts.recipientDetails,
      status: payouts.status,
      attempts: payouts.attempts,
    })
    .prepare("claim_payouts");

  const completeMany = db
    .update(payouts)
    .set({ status: "COMPLETED", processedAt: sql`now()`, updatedAt: sql`now()` })
    .from(sql`jsonb_to_recordset(${sql.placeholder("claims")}::jsonb) AS claim(id uuid, attempts smallint)`)
    .where(sql`${payouts.id} = claim.id AND ${payouts.status} = 'PROCESSING' AND ${payouts.attempts} = claim.attempts`)
    .returning({ id: payouts.id })
    .prepare("complete_payouts");

  const claim = batched(
    async (deliveries: QueueMessage[]) => {
      const takesOver = (d: QueueMessage) => d.resume === true || d.redelivered;
      const rows = await claimMany.execute({
        ids: deliveries.map((d) => d.id).join(","),
        resumed: deliveries
          .filter(takesOver)
          .map((d) => d.id)
          .join(","),
      });
      // The same id twice in one batch (a duplicate message) is claimed once: the first one holds it.
      const byId = new Map(rows.map((row) => [row.id, row]));
      return deliveries.map((d) => {
        const row = byId.get(d.id);
        byId.delete(d.id);
        return row;
      });
    },
    { maxSize: 500, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable },
  );

  const complete = batched(
    async (claims: Claimed[]) => {
      const rows = await completeMany.execute({
        claims: JSON.stringify(claims.map((c) => ({ id: c.id, attempts: c.attempts }))),
      });
      const done = new Set(rows.map((row) => row.id));
      return claims.map((c) => done.has(c.id));
    },
    { maxSize: 500, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable },
  );

  const callGateway = async (claimed: Claimed): Promise<Payment | TemporaryFailure> => {
    const signal = AbortSignal.timeout(options.taskTimeLimitMs);
    try {
      return await gateway.pay(
        {
          paymentKey: claimed.id,
          payoutId: claimed.id,
          amount: claimed.amount,
          currency: claimed.currency,
          recipientDetails: claimed.recipientDetails,
        },
        signal,
      );
    } catch (error) {
      const failure = asTemporaryFailure(error, signal, options);
      if (failure) return failure;
      throw error;
    }
  };

  return async function process(delivery: QueueMessage): Promise<HandlerResult> {
    // A claim run again may find its own first run's commit: as a takeover it claims the payout
    // anew (one more attempt) instead of leaving it PROCESSING for the relay.
    const claimed = await persist((again) => claim(again ? { ...delivery, resume: true } : delivery));
    const plog = log.child({ payout_id: delivery.id });
    if (!claimed) {
      plog.debug("nothing to claim: the payout is gone, final, or held by another worker");
      return {};
    }
    if (claimed.status !== "PROCESSING" || claimed.attempts < 1) {
      throw new Error(`a claim returned a payout in ${claimed.status} with ${claimed.attempts} attempts`);
    }
    const attempt = claimed.attempts;
    recordStatusChange(plog, "PROCESSING", { attempt });

    await calls.acquire();
    const callStarted = performance.now();
    const result = await callGateway(claimed).finally(calls.release);
    const failed = "temporary" in result;
    gatewayCallDuration.observe((performance.now() - callStarted) / 1000, { outcome: failed ? "failure" : "success" });
    if (!failed) {
      if (await persist(() => complete(claimed))) {
        recordStatusChange(plog, "COMPLETED", { attempt, reference: result.reference });
      }
      return {};
    }

    const retryAfterMs = nextAttemptAfterMs(options, attempt);
    if (retryAfterMs !== undefined) {
      payoutRetries.inc();
      plog.warn("gateway attempt failed; will retry", { attempt, retry_after_ms: retryAfterMs, reason: result.reason });
      return { retryAfterMs };
    }
    // Before giving up, ask whether an unanswered call paid after all: FAILED must mean no money moved.
    const payment = await gateway.lookup(claimed.id);
    if (payment) {
      if (await persist(() => complete(claimed))) {
        recordStatusChange(plog, "COMPLETED", { attempt, reference: payment.reference });
      }
      return {};
    }
    const reason = `gateway failed ${attempt} times; last error: ${result.reason}`;
    if (await persist(() => fail(claimed, reason))) {
      recordStatusChange(plog, "FAILED", { attempt, failure_reason: reason });
    }
    return {};
  };
}
