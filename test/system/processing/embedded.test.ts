// `bun src/main.ts` (role all) with DATABASE_URL and without AMQP_URL: the in-process queue, which
// keeps nothing across a restart, so start-up recovers what a previous run left unfinished.
import { afterAll, afterEach, beforeEach, expect, test } from "bun:test";
import { simulatedGatewayPayments } from "../../../src/db/schema";
import { resetDatabase, testDatabase } from "../../kit/db";
import { insertPayout, ledger, payout, reaches } from "../../kit/fixtures";
import { freePort, spawnRole, stopEverything, withKey } from "../../kit/processes";
import { eventually } from "../../kit/wait";

const database = testDatabase();

beforeEach(() => resetDatabase(database));
afterEach(stopEverything);
afterAll(() => database.close());

test("payouts left NEW and PROCESSING by a previous run are completed at start-up, each paid once", async () => {
  const leftNew = await insertPayout(database);
  const claimedUnpaid = await insertPayout(database, { status: "PROCESSING", attempts: 1 });
  const paidUnanswered = await insertPayout(database, { status: "PROCESSING", attempts: 1 });
  await database.db.insert(simulatedGatewayPayments).values({
    paymentKey: paidUnanswered.id,
    payoutId: paidUnanswered.id,
    amount: paidUnanswered.amount,
    currency: paidUnanswered.currency,
  });
  const cancelled = await insertPayout(database, { status: "CANCELLED" });

  const port = freePort();
  spawnRole("all", { AMQP_URL: "", HOST: "127.0.0.1", PORT: String(port), GATEWAY_LATENCY_MS: "20" });

  for (const { id } of [leftNew, claimedUnpaid, paidUnanswered]) {
    const done = await reaches(database, id, "COMPLETED", 30_000);
    expect(done.processedAt).toBeInstanceOf(Date);
    expect(done.failureReason).toBeNull();
    expect((await ledger(database, id)).payments).toBe(1);
  }
  expect(await ledger(database, paidUnanswered.id)).toEqual({ payments: 1, calls: 2 });
  expect(await ledger(database, leftNew.id)).toEqual({ payments: 1, calls: 1 });

  // The same process takes new payouts through its in-process queue.
  const headers = await withKey({ "content-type": "application/json" });
  const response = await eventually(() =>
    fetch(`http://127.0.0.1:${port}/api/payouts/`, {
      method: "POST",
      headers,
      body: JSON.stringify({ amount: "5", currency: "RUB", recipient_details: "40817810099910004312" }),
    }).catch(() => undefined),
  );
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  await reaches(database, id, "COMPLETED");
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });

  expect((await payout(database, cancelled.id)).status).toBe("CANCELLED");
  expect(await ledger(database, cancelled.id)).toEqual({ payments: 0, calls: 0 });
}, 60_000);
