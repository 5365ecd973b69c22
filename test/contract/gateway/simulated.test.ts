// The simulated gateway's ledger on the real database: calls in flight together are one batched
// statement, and the idempotency key still decides what is one payment.
import { afterAll, beforeEach, expect, test } from "bun:test";
import { simulatedGatewayPayments } from "../../../src/db/schema";
import { simulatedGateway } from "../../../src/gateway/simulated";
import { resetDatabase, testDatabase } from "../../kit/db";
import { ledger } from "../../kit/fixtures";

const database = testDatabase();
beforeEach(() => resetDatabase(database));
afterAll(() => database.close());

const request = (payoutId: string, amount = "10.00") => ({
  paymentKey: payoutId,
  payoutId,
  amount,
  currency: "EUR" as const,
  recipientDetails: "DE89 3704",
});

test("calls made together are one payment per key, each call counted, amounts as sent", async () => {
  const gateway = simulatedGateway({ db: database.db }, { latencyMs: 0, failureRate: 0 });
  const signal = new AbortController().signal;
  const [a, b] = [Bun.randomUUIDv7(), Bun.randomUUIDv7()];
  // Same tick: one batch holding key a twice.
  const answers = await Promise.all([
    gateway.pay(request(a, "1234567890.12"), signal),
    gateway.pay(request(b, "0.01"), signal),
    gateway.pay(request(a, "1234567890.12"), signal),
  ]);
  expect(answers.map((p) => p.reference)).toEqual([`sim_${a}`, `sim_${b}`, `sim_${a}`]);
  expect(await ledger(database, a)).toEqual({ payments: 1, calls: 2 });
  expect(await ledger(database, b)).toEqual({ payments: 1, calls: 1 });
  // A later call with a known key adds a call to the same payment, moving no more money.
  await gateway.pay(request(b, "0.01"), signal);
  expect(await ledger(database, b)).toEqual({ payments: 1, calls: 2 });
  const rows = await database.db.select().from(simulatedGatewayPayments);
  expect(Object.fromEntries(rows.map((r) => [r.payoutId, [r.amount, r.currency]]))).toEqual({
    [a]: ["1234567890.12", "EUR"],
    [b]: ["0.01", "EUR"],
  });
  expect(await gateway.lookup(a)).toEqual({ reference: `sim_${a}` });
  expect(await gateway.lookup(Bun.randomUUIDv7())).toBeUndefined();
});
