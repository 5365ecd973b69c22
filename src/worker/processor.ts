import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { payouts } from "../db/schema";
import { type Payment, type PayoutGateway, TemporaryGatewayError } from "../gateway/port";
import type { Logger } from "../log";
import type { Status } from "../payouts/model";
import type { Delivery, HandlerResult } from "../queue/port";

export type ProcessorOptions = {
  maxAttempts: number;
  retryBaseDelayMs: number;
  taskTimeLimitMs: number;
};

/** Delay before attempt `attempt + 1`: base, 2 x base, 4 x base, ... */
export const retryDelayMs = (baseMs: number, attempt: number) => baseMs * 2 ** (attempt - 1);

/** Every retry delay a payout can wait, for the broker's retry queues. */
export const retryDelays = (options: ProcessorOptions) =>
  Array.from({ length: options.maxAttempts - 1 }, (_, i) => retryDelayMs(options.retryBaseDelayMs, i + 1));

/**
 * One message, one payout: claim it, pay it through the gateway, record the outcome. Every status
 * write is conditional on the status it expects, so a message that arrives twice, late, or for a
 * payout that was cancelled or deleted finds nothing to do. The caller acks only after this
 * returns, that is after the outcome is committed.
 */
export function createProcessor(db: Db, gateway: PayoutGateway, options: ProcessorOptions, log: Logger) {
  const finish = async (id: string, status: Status, failureReason: string | null) => {
    const [row] = await db
      .update(payouts)
      .set({ status, failureReason, processedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(payouts.id, id), eq(payouts.status, "PROCESSING")))
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

    const result = await callGateway(claimed);
    if (!(result instanceof TemporaryGatewayError)) {
      if (await finish(claimed.id, "COMPLETED", null)) {
        plog.info("payout status changed", { status: "COMPLETED", attempt, reference: result.reference });
      }
      return {};
    }

    if (attempt < options.maxAttempts) {
      const retryAfterMs = retryDelayMs(options.retryBaseDelayMs, attempt);
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
      if (await finish(claimed.id, "COMPLETED", null)) {
        plog.info("payout status changed", { status: "COMPLETED", attempt, reference: payment.reference });
      }
      return {};
    }
    const reason = `gateway failed ${attempt} times; last error: ${result.message}`;
    if (await finish(claimed.id, "FAILED", reason)) {
      plog.warn("payout status changed", { status: "FAILED", attempt, failure_reason: reason });
    }
    return {};
  };
}
