import { expect, test } from "bun:test";
import { ledger, payout, reaches } from "../../kit/fixtures";
import { drained, processingFixtures, startApi, startWorker } from "./harness";

const fixtures = processingFixtures();
const { database } = fixtures;

test("the same message delivered many times at once, some asking to resume, pays once", async () => {
  const api = await startApi(database);
  const id = await api.createPublished();
  await api.publish([{ id }, { id }, { id }, { id, resume: true }, { id, resume: true }, { id, resume: true }]);

  // All seven are in the queue before the worker starts, so they are handled side by side.
  const worker = await startWorker(fixtures.broker, { concurrency: 10, latencyMs: 200 });
  await reaches(database, id, "COMPLETED");
  await drained(fixtures.broker, worker);

  const row = await payout(database, id);
  expect(row.status).toBe("COMPLETED");
  expect(row.failureReason).toBeNull();
  expect(row.processedAt).toBeInstanceOf(Date);
  const { payments, calls } = await ledger(database, id);
  expect(payments).toBe(1);
  // The first claim, then at most one takeover per resuming message.
  expect(calls).toBeGreaterThanOrEqual(1);
  expect(calls).toBeLessThanOrEqual(4);
});

// With one message in flight at a time, the queue's order holds: once the payout published last
// is done, every message before it was handled.
test("a message for a payout that is already COMPLETED changes nothing and moves no money", async () => {
  const api = await startApi(database);
  await startWorker(fixtures.broker, { concurrency: 1 });
  const id = await api.create();
  const done = await reaches(database, id, "COMPLETED");

  await api.publish([{ id }, { id, resume: true }]);
  await reaches(database, await api.create(), "COMPLETED");

  expect(await payout(database, id)).toEqual(done);
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });
});

test("a message for a payout that does not exist is acknowledged and dropped", async () => {
  const api = await startApi(database);
  await startWorker(fixtures.broker, { concurrency: 1 });
  const missing = [Bun.randomUUIDv7(), Bun.randomUUIDv7()];
  await api.publish([{ id: missing[0] as string }, { id: missing[1] as string, resume: true }]);
  await reaches(database, await api.create(), "COMPLETED");

  for (const id of missing) expect(await ledger(database, id)).toEqual({ payments: 0, calls: 0 });
  expect((await fixtures.broker.depth("payouts.dead")).messages).toBe(0);
  expect((await fixtures.broker.depth("payouts")).messages).toBe(0);
});
