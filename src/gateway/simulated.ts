import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { isDatabaseUnavailable } from "../db/errors";
import { AMOUNT_TYPE, PAYMENT_KEY_MAX, simulatedGatewayPayments } from "../db/schema";
import { batched } from "../lib/batched";
import { type Payment, type PayoutGateway, type PayRequest, TemporaryGatewayError } from "./port";

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

const reference = (paymentKey: string): Payment => ({ reference: `sim_${paymentKey}` });

/**
 * A payout provider simulated on this service's own database, with a real provider's contract:
 * the payment key is the ledger's unique key, so a repeated call answers with the first
 * payment and moves no more money. Money moves at the start of a successful call and the answer
 * comes after the latency, so a worker that dies mid-call leaves a paid but unanswered payout:
 * the case that idempotency exists for. Like a real provider's, the latency is the whole call's,
 * its own bookkeeping included.
 */
export function simulatedGateway({ db }: { db: Db }, options: SimulatedGatewayOptions): PayoutGateway {
  // Calls in flight together are written to the ledger in one statement, prepared once (the batch
  // travels as one JSON parameter, so no SQL is built per batch), keys sorted so that concurrent
  // batches lock in one order. A key repeated within a batch is one payment, two calls.
  const recordMany = db
    .insert(simulatedGatewayPayments)
    .select(
      sql`SELECT t.idempotency_key, t.payout_id, t.amount, t.currency, t.calls, now()
          FROM jsonb_to_recordset(${sql.placeholder("payments")}::jsonb)
            AS t(idempotency_key ${sql.raw(`varchar(${PAYMENT_KEY_MAX})`)}, payout_id uuid,
                 amount ${sql.raw(AMOUNT_TYPE)}, currency currency, calls integer)
          ORDER BY t.idempotency_key`,
    )
    .onConflictDoUpdate({
      target: simulatedGatewayPayments.paymentKey,
      set: { calls: sql`${simulatedGatewayPayments.calls} + excluded.calls` },
    })
    .prepare("record_payments");

  const record = batched(
    async (requests: PayRequest[]) => {
      const byKey = new Map<
        string,
        { idempotency_key: string; payout_id: string; amount: string; currency: string; calls: number }
      >();
      for (const request of requests) {
        const entry = byKey.get(request.paymentKey);
        if (entry) entry.calls++;
        else
          byKey.set(request.paymentKey, {
            idempotency_key: request.paymentKey,
            payout_id: request.payoutId,
            amount: request.amount,
            currency: request.currency,
            calls: 1,
          });
      }
      await recordMany.execute({ payments: JSON.stringify([...byKey.values()]) });
      return requests.map((request) => reference(request.paymentKey));
    },
    { maxSize: 500, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable },
  );

  return {
    async pay(request, signal) {
      if (Math.random() < options.failureRate) {
        await sleep(options.latencyMs, signal);
        throw new TemporaryGatewayError("simulated gateway: temporarily unavailable");
      }
      if (signal.aborted) throw new TemporaryGatewayError("the gateway call was aborted");
      // The call lasts latencyMs from its start, its ledger write included (or as long as the write).
      const [payment] = await Promise.all([record(request), sleep(options.latencyMs, signal)]);
      return payment;
    },

    async lookup(paymentKey) {
      const [row] = await db
        .select({ key: simulatedGatewayPayments.paymentKey })
        .from(simulatedGatewayPayments)
        .where(eq(simulatedGatewayPayments.paymentKey, paymentKey));
      return row && reference(row.key);
    },
  };
}
