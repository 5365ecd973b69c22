import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PayoutRow, payouts } from "../db/schema";
import { type Payment, type PayoutGateway, TemporaryGatewayError } from "../gateway/port";
import type { Logger } from "../log";
import { gatewayCallDuration, payoutRetries, payoutStatusChanges } from "../metrics";
import type { Status } from "../payouts/model";
import type { Delivery, HandlerResult } from "../queue/port";

export type ProcessorOptions = {
  maxAttempts: number;
  retryBaseDelayMs: number;
  taskTimeLimitMs: number;
};

// The backoff stops growing here. Each delay is a retry queue's TTL, and RabbitMQ refuses a TTL of
// years: uncapped, a MAX_ATTEMPTS of a few dozen would fail the topology on every connect.
const MAX_RETRY_DELAY_MS = 3_600_000;

/** Delay before attempt `attempt + 1`: base, 2 x base, 4 x base, ..., at most an hour. */
export const retryDelayMs = (baseMs: number, attempt: number) =>
  Math.min(baseMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);

/**
 * Every retry delay a payout can wait, for the broker's retry queues; never empty, since a message
 * whose handler failed waits out the first delay too, even with MAX_ATTEMPTS=1.
 */
export const retryDelays = (options: ProcessorOptions) =>
  Array.from({ length: Math.max(1, options.maxAttempts - 1) }, (_, i) => retryDelayMs(options.retryBaseDelayMs, i + 1));

/**
 * One message, one payout: claim it, pay it through the gateway, record the outcome. Every status
 * write is conditional on the status it expects, so a message that arrives twice, late, or for a
 * payout that was cancelled or deleted finds nothing to do. The caller acks only after this
 * returns, that is after the outcome is committed.
 */
export function createProcessor(db: Db, gateway: PayoutGateway, options: ProcessorOptions, log: Logger) {
  // Conditional on the claim's attempt too: once a redelivered message has taken the payout over,
  // only the new holder writes the outcome. A taken-over worker whose call failed must not write
  // FAILED while the new holder's call may still move the money.
  const finish = async (claimed: PayoutRow, status: Status, failureReason: string | null) => {
    const [row] = await db
      .update(payouts)
      .set({ status, failureReason, processedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(payouts.id, claimed.id), eq(payouts.status, "PROCESSING"), eq(payouts.attempts, claimed.attempts)))
      .returning({ id: payouts.id });
    return row !== undefined;
  };

  const callGateway = async (claimed: typeof payouts.$inferSelect): Promise<Payment | TemporaryGatewayError> => {
    const signal = AbortSignal.timeout(options.taskTimeLimitMs);
    try {
      return await gateway.pay(
        {
          idempotencyKey: claimed.id,
          payoutId: claimed.id,
          amount: claimed.amount,
          currency: claimed.currency,
          recipientDetails: claimed.recipientDetails,
        },
        signal,
      );
    } catch (error) {
      if (error instanceof TemporaryGatewayError) return error;
      if (signal.aborted) return new TemporaryGatewayError(`no answer within ${options.taskTimeLimitMs} ms`);
      throw error;
    }
  };

  return async function process(delivery: Delivery): Promise<HandlerResult> {
    // A NEW payout is claimed by anyone; a PROCESSING one only by a message that says its holder
    // is gone (a broker redelivery, a scheduled retry, recovery at start-up).
    const takeover = delivery.resume === true || delivery.redelivered;
    const claimable: Status[] = takeover ? ["NEW", "PROCESSING"] : ["NEW"];
    const [claimed] = await db
      .update(payouts)
      .set({ status: "PROCESSING", attempts: sql`${payouts.attempts} + 1`, updatedAt: sql`now()` })
      .where(and(eq(payouts.id, delivery.id), inArray(payouts.status, claimable)))
      .returning();
    const plog = log.child({ payout_id: delivery.id });
    if (!claimed) {
      plog.debug("nothing to claim: the payout is gone, final, or held by another worker");
      return {};
    }
    const attempt = claimed.attempts;
    plog.info("payout status changed", { status: "PROCESSING", attempt });
    payoutStatusChanges.inc({ status: "PROCESSING" });

    const callStarted = performance.now();
    const result = await callGateway(claimed);
    gatewayCallDuration.observe((performance.now() - callStarted) / 1000, {
      outcome: result instanceof TemporaryGatewayError ? "failure" : "success",
    });
    if (!(result instanceof TemporaryGatewayError)) {
      if (await finish(claimed, "COMPLETED", null)) {
        plog.info("payout status changed", { status: "COMPLETED", attempt, reference: result.reference });
        payoutStatusChanges.inc({ status: "COMPLETED" });
      }
      return {};
    }

    if (attempt < options.maxAttempts) {
      const retryAfterMs = retryDelayMs(options.retryBaseDelayMs, attempt);
      payoutRetries.inc();
      plog.warn("gateway attempt failed; will retry", {
        attempt,
        retry_after_ms: retryAfterMs,
        reason: result.message,
      });
      return { retryAfterMs };
    }
    // Before giving up, ask whether an unanswered call paid after all: FAILED must mean no money moved.
    const payment = await gateway.lookup(claimed.id);
    if (payment) {
      if (await finish(claimed, "COMPLETED", null)) {
        plog.info("payout status changed", { status: "COMPLETED", attempt, reference: payment.reference });
        payoutStatusChanges.inc({ status: "COMPLETED" });
      }
      return {};
    }
    const reason = `gateway failed ${attempt} times; last error: ${result.message}`;
    if (await finish(claimed, "FAILED", reason)) {
      plog.warn("payout status changed", { status: "FAILED", attempt, failure_reason: reason });
      payoutStatusChanges.inc({ status: "FAILED" });
    }
    return {};
  };
}
