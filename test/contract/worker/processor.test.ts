// The processor on the real database, with a gateway whose every answer the test gives: the
// interleavings that timing alone would rarely produce.
import { afterAll, beforeEach, expect, test } from "bun:test";
import { simulatedGatewayPayments } from "../../../src/db/schema";
import { type PayoutGateway, type PayRequest, TemporaryGatewayError } from "../../../src/gateway/port";
import { simulatedGateway } from "../../../src/gateway/simulated";
import { systemClock } from "../../../src/lib/clock";
import { createProcessor } from "../../../src/payouts/processing/processor";
import type { RetryPolicy } from "../../../src/payouts/processing/retry-policy";
import { resetDatabase, testDatabase } from "../../kit/db";
import { insertPayout, ledger, payout } from "../../kit/fixtures";
import { quiet as log } from "../../kit/log";
import { eventually } from "../../kit/wait";

const database = testDatabase();
beforeEach(() => resetDatabase(database));
afterAll(() => database.close());

type Answer = "pay" | "fail";

/** Each call waits for the test's answer; "pay" moves the money in the simulated ledger. */
function scriptedGateway() {
  const ledgerGateway = simulatedGateway({ db: database.db }, { latencyMs: 0, failureRate: 0 });
  const calls: { request: PayRequest; answer: (a: Answer) => void }[] = [];
  const gateway: PayoutGateway = {
    async pay(request, signal) {
      const { promise, resolve } = Promise.withResolvers<Answer>();
      calls.push({ request, answer: resolve });
      if ((await promise) === "fail") throw new TemporaryGatewayError("scripted failure");
      return ledgerGateway.pay(request, signal);
    },
    lookup: (key) => ledgerGateway.lookup(key),
  };
  const call = (n: number) =>
    eventually(async () => calls[n - 1]).then((c) => ({ ...c, answer: (a: Answer) => c.answer(a) }));
  return { gateway, call };
}

const options = (maxAttempts: number): RetryPolicy => ({
  maxAttempts,
  retryBaseDelayMs: 100,
  taskTimeLimitMs: 10_000,
});

test("a first delivery does not take over a payout another worker holds", async () => {
  const { gateway } = scriptedGateway();
  const process = createProcessor(
    { db: database.db, availability: database.availability, gateway: gateway, clock: systemClock, log },
    options(3),
  );
  const held = await insertPayout(database, { status: "PROCESSING", attempts: 1 });

  expect(await process({ id: held.id, redelivered: false })).toEqual({});
  expect(await payout(database, held.id)).toEqual(held);
});

test("a temporary failure below MAX_ATTEMPTS asks for a retry after the backoff and leaves the payout PROCESSING", async () => {
  const { gateway, call } = scriptedGateway();
  const process = createProcessor(
    { db: database.db, availability: database.availability, gateway: gateway, clock: systemClock, log },
    options(3),
  );
  const { id } = await insertPayout(database);

  const first = process({ id, redelivered: false });
  (await call(1)).answer("fail");
  expect(await first).toEqual({ retryAfterMs: 100 });
  const second = process({ id, resume: true, redelivered: false });
  (await call(2)).answer("fail");
  expect(await second).toEqual({ retryAfterMs: 200 });

  const row = await payout(database, id);
  expect(row.status).toBe("PROCESSING");
  expect(row.attempts).toBe(2);
});

test("the last attempt fails but an earlier, unanswered call had paid: COMPLETED, not FAILED", async () => {
  const { gateway, call } = scriptedGateway();
  const process = createProcessor(
    { db: database.db, availability: database.availability, gateway: gateway, clock: systemClock, log },
    options(2),
  );
  const { id, amount, currency } = await insertPayout(database, { status: "PROCESSING", attempts: 1 });
  await database.db.insert(simulatedGatewayPayments).values({ paymentKey: id, payoutId: id, amount, currency });

  const last = process({ id, redelivered: true });
  (await call(1)).answer("fail");
  expect(await last).toEqual({});

  const row = await payout(database, id);
  expect(row.status).toBe("COMPLETED");
  expect(row.failureReason).toBeNull();
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });
});

test("a worker whose payout was taken over does not write its outcome: FAILED never hides a payment", async () => {
  const { gateway, call } = scriptedGateway();
  const process = createProcessor(
    { db: database.db, availability: database.availability, gateway: gateway, clock: systemClock, log },
    options(1),
  );
  const { id } = await insertPayout(database);

  // A claims; its holder looks gone, so a resuming message lets B take over while A still runs.
  const a = process({ id, redelivered: false });
  const callA = await call(1);
  const b = process({ id, resume: true, redelivered: false });
  const callB = await call(2);

  // A's last attempt fails before B's call reaches the gateway: A's lookup finds no payment.
  callA.answer("fail");
  await a;
  callB.answer("pay");
  await b;

  const row = await payout(database, id);
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });
  expect(row.status).toBe("COMPLETED");
  expect(row.failureReason).toBeNull();
  expect(row.attempts).toBe(2);
});

test("when a taken-over worker's call paid, the new holder's repeated call completes the payout, paid once", async () => {
  const { gateway, call } = scriptedGateway();
  const process = createProcessor(
    { db: database.db, availability: database.availability, gateway: gateway, clock: systemClock, log },
    options(1),
  );
  const { id } = await insertPayout(database);

  const a = process({ id, redelivered: false });
  const callA = await call(1);
  const b = process({ id, resume: true, redelivered: false });
  const callB = await call(2);

  callA.answer("pay");
  await a;
  // B's call repeats A's with the same idempotency key: the money moved once.
  callB.answer("pay");
  await b;

  const row = await payout(database, id);
  expect(row.status).toBe("COMPLETED");
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 2 });
});

test("at most maxCalls gateway calls run at once; the other payouts are claimed and wait their turn", async () => {
  const { gateway, call } = scriptedGateway();
  let running = 0;
  let most = 0;
  const counted: PayoutGateway = {
    async pay(request, signal) {
      running++;
      most = Math.max(most, running);
      try {
        return await gateway.pay(request, signal);
      } finally {
        running--;
      }
    },
    lookup: (key) => gateway.lookup(key),
  };
  const process = createProcessor(
    { db: database.db, availability: database.availability, gateway: counted, clock: systemClock, log },
    { ...options(3), maxCalls: 2 },
  );
  const ids = await Promise.all(Array.from({ length: 5 }, async () => (await insertPayout(database)).id));

  const runs = ids.map((id) => process({ id, redelivered: false }));
  await call(2);
  await eventually(async () =>
    (await Promise.all(ids.map((id) => payout(database, id)))).every((p) => p.status === "PROCESSING"),
  );
  expect(running).toBe(2);
  // Each call that ends lets a waiting one start.
  for (let n = 1; n <= 5; n++) (await call(n)).answer("pay");
  expect(await Promise.all(runs)).toEqual([{}, {}, {}, {}, {}]);
  expect(most).toBe(2);
  for (const id of ids) expect((await payout(database, id)).status).toBe("COMPLETED");
});
