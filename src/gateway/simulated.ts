import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { simulatedGatewayPayments } from "../db/schema";
import { type Payment, type PayoutGateway, TemporaryGatewayError } from "./port";

export type SimulatedGatewayOptions = {
  latencyMs: number;
  /** Probability (0..1) that a call fails temporarily, before any money moves. */
  failureRate: number;
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new TemporaryGatewayError("the gateway call was aborted"));
      },
      { once: true },
    );
  });
}

const reference = (id: number): Payment => ({ reference: `sim_${id}` });

/**
 * A payout provider simulated on this service's own database, with a real provider's contract:
 * the idempotency key is the ledger's unique key, so a repeated call answers with the first
 * payment and moves no more money. Money moves at the start of a successful call and the answer
 * comes after the latency, so a worker that dies mid-call leaves a paid but unanswered payout:
 * the case that idempotency exists for.
 */
export function simulatedGateway(db: Db, options: SimulatedGatewayOptions): PayoutGateway {
  return {
    async pay(request, signal) {
      if (Math.random() < options.failureRate) {
        await sleep(options.latencyMs, signal);
        throw new TemporaryGatewayError("simulated gateway: temporarily unavailable");
      }
      if (signal.aborted) throw new TemporaryGatewayError("the gateway call was aborted");
      const [row] = await db
        .insert(simulatedGatewayPayments)
        .values({
          idempotencyKey: request.idempotencyKey,
          payoutId: request.payoutId,
          amount: request.amount,
          currency: request.currency,
        })
        .onConflictDoUpdate({
          target: simulatedGatewayPayments.idempotencyKey,
          set: { calls: sql`${simulatedGatewayPayments.calls} + 1` },
        })
        .returning({ id: simulatedGatewayPayments.id });
      if (!row) throw new Error("the simulated ledger returned no row");
      await sleep(options.latencyMs, signal);
      return reference(row.id);
    },

    async lookup(idempotencyKey) {
      const [row] = await db
        .select({ id: simulatedGatewayPayments.id })
        .from(simulatedGatewayPayments)
        .where(eq(simulatedGatewayPayments.idempotencyKey, idempotencyKey));
      return row && reference(row.id);
    },
  };
}
