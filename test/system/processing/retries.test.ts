import { expect, test } from "bun:test";
import { inArray } from "drizzle-orm";
import { payouts } from "../../../src/db/schema";
import { ledger, reaches } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker, startApi, startWorker } from "./harness";

const fixtures = processingFixtures();
const { database } = fixtures;

test("a gateway that always fails: retried with backoff, then FAILED after MAX_ATTEMPTS with a reason, nothing paid", async () => {
  const api = await startApi(database);
  await spawnWorker(fixtures.broker, {
    GATEWAY_FAILURE_RATE: "1",
    GATEWAY_LATENCY_MS: "10",
    MAX_ATTEMPTS: "3",
    RETRY_BASE_DELAY_MS: "100",
  });
  const id = await api.create();

  const failed = await reaches(database, id, "FAILED");
  expect(failed.attempts).toBe(3);
  expect(failed.failureReason).toContain("3 times");
  expect(failed.failureReason).toContain("temporarily unavailable");
  expect(failed.processedAt).toBeInstanceOf(Date);
  expect(await ledger(database, id)).toEqual({ payments: 0, calls: 0 });

  const read = await api.request("GET", `/api/payouts/${id}/`);
  expect(read.body).toMatchObject({ status: "FAILED", failure_reason: failed.failureReason });
}, 30_000);

test("a gateway failing half the time: every payout ends COMPLETED and paid once, or FAILED after every attempt and unpaid", async () => {
  const api = await startApi(database);
  await startWorker(fixtures.broker, { failureRate: 0.5, latencyMs: 5, maxAttempts: 3, retryBaseDelayMs: 100 });
  const ids = await Promise.all(Array.from({ length: 30 }, () => api.create()));

  const rows = await eventually(async () => {
    const found = await database.db.select().from(payouts).where(inArray(payouts.id, ids));
    return found.every((r) => r.status === "COMPLETED" || r.status === "FAILED") && found;
  }, 30_000);

  expect(rows).toHaveLength(30);
  for (const row of rows) {
    expect(row.processedAt).toBeInstanceOf(Date);
    if (row.status === "COMPLETED") {
      expect(row.failureReason).toBeNull();
      expect(row.attempts).toBeGreaterThanOrEqual(1);
      expect(row.attempts).toBeLessThanOrEqual(3);
      expect(await ledger(database, row.id)).toEqual({ payments: 1, calls: 1 });
    } else {
      expect(row.attempts).toBe(3);
      expect(row.failureReason).toContain("3 times");
      expect(await ledger(database, row.id)).toEqual({ payments: 0, calls: 0 });
    }
  }
}, 60_000);

test("a gateway call that outlives TASK_TIME_LIMIT_MS counts as failed; before FAILED, the lookup finds it paid: COMPLETED, paid once", async () => {
  const api = await startApi(database);
  // Every call moves the money at once and would answer after 2 s: each attempt times out.
  await startWorker(fixtures.broker, { latencyMs: 2000, taskTimeLimitMs: 100, maxAttempts: 3, retryBaseDelayMs: 100 });
  const id = await api.create();

  const done = await reaches(database, id, "COMPLETED");
  expect(done.attempts).toBe(3);
  expect(done.failureReason).toBeNull();
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 3 });
}, 30_000);
