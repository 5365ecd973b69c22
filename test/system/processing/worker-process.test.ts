// The worker role as it runs in production: `bun src/main.ts --role=worker`, killed and stopped.
import { expect, test } from "bun:test";
import { inArray } from "drizzle-orm";
import { payouts } from "../../../src/db/schema";
import { countByStatus, ledger, payout, reaches } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker, startApi } from "./harness";

const fixtures = processingFixtures();
const { database } = fixtures;

test("a worker killed after the gateway took the money but before it answered: the next worker completes it, paid once", async () => {
  const api = await startApi(database);
  const slow = await spawnWorker(fixtures.broker, { GATEWAY_LATENCY_MS: "10000" });
  const id = await api.create();

  // The money moved at the start of the call; the answer is 10 s away.
  await eventually(
    async () => (await payout(database, id)).status === "PROCESSING" && (await ledger(database, id)).payments === 1,
  );
  slow.kill("SIGKILL");
  await slow.exited;
  await eventually(async () => (await fixtures.broker.depth("payouts")).consumers === 0);

  await spawnWorker(fixtures.broker, { GATEWAY_LATENCY_MS: "20" });
  const done = await reaches(database, id, "COMPLETED");
  expect(done.failureReason).toBeNull();
  expect(done.processedAt).toBeInstanceOf(Date);
  expect(done.attempts).toBe(2);
  const { payments, calls } = await ledger(database, id);
  expect(payments).toBe(1);
  expect(calls).toBeGreaterThanOrEqual(2);
}, 60_000);

test("SIGTERM mid-batch: the worker finishes what it holds, hands back the rest and exits 0; everything ends COMPLETED, paid once", async () => {
  const api = await startApi(database);
  const first = await spawnWorker(fixtures.broker, {
    WORKER_THREADS: "2",
    WORKER_CONCURRENCY: "5",
    GATEWAY_LATENCY_MS: "1000",
  });
  const ids = await Promise.all(Array.from({ length: 50 }, () => api.create()));

  await eventually(async () => ((await countByStatus(database)).PROCESSING ?? 0) >= 5);
  first.kill("SIGTERM");
  expect(await first.exited).toBe(0);

  // Drained: what it held is COMPLETED, what it had not started is back in the queue as NEW.
  const afterStop = await countByStatus(database);
  expect(afterStop.PROCESSING).toBeUndefined();
  expect(afterStop.COMPLETED).toBeGreaterThanOrEqual(5);
  expect((afterStop.COMPLETED ?? 0) + (afterStop.NEW ?? 0)).toBe(50);

  await spawnWorker(fixtures.broker, { WORKER_THREADS: "1", GATEWAY_LATENCY_MS: "10" });
  await eventually(async () => (await countByStatus(database)).COMPLETED === 50, 30_000);

  const rows = await database.db.select().from(payouts).where(inArray(payouts.id, ids));
  for (const row of rows) {
    expect(row.status).toBe("COMPLETED");
    expect(row.attempts).toBe(1);
    // Nothing was cut off mid-call, so no call was repeated.
    expect(await ledger(database, row.id)).toEqual({ payments: 1, calls: 1 });
  }
}, 60_000);
