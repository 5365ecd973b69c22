import { expect, test } from "bun:test";
import { ledger, payout, reaches } from "../../kit/fixtures";
import { drained, processingFixtures, startApi, startWorker } from "./harness";

const fixtures = processingFixtures(10);
const { database } = fixtures;

const cancel = { status: "CANCELLED" };

test("a payout cancelled while its message waits in the queue is never paid", async () => {
  const api = await startApi(database);
  const id = await api.createPublished();
  const cancelled = await api.request("PATCH", `/api/payouts/${id}/`, cancel);
  expect(cancelled.status).toBe(200);

  const worker = await startWorker(fixtures.broker);
  const later = await api.create();
  await reaches(database, later, "COMPLETED");
  await drained(fixtures.broker, worker);

  const row = await payout(database, id);
  expect(row.status).toBe("CANCELLED");
  expect(row.attempts).toBe(0);
  expect(row.processedAt).toBeNull();
  expect(await ledger(database, id)).toEqual({ payments: 0, calls: 0 });
});

test("a cancel racing the worker's claim: a 200 means CANCELLED and unpaid, a 409 means COMPLETED and paid once", async () => {
  const api = await startApi(database);
  const worker = await startWorker(fixtures.broker, { concurrency: 20, latencyMs: 5 });

  // Ten at a time, each cancel following its creation by 0 to 19 ms: about the time the message
  // takes to reach the worker, so that some cancels come before the claim and some after.
  const outcomes: { id: string; response: Awaited<ReturnType<typeof api.request>> }[] = [];
  for (let wave = 0; wave < 10; wave++) {
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const id = await api.create();
        await Bun.sleep(i * 2);
        const response = await api.request("PATCH", `/api/payouts/${id}/`, cancel);
        return { id, response };
      }),
    );
    outcomes.push(...results);
  }

  // The race was run both ways: some cancels won, some claims did.
  expect(outcomes.filter((o) => o.response.status === 200).length).toBeGreaterThan(0);
  expect(outcomes.filter((o) => o.response.status === 409).length).toBeGreaterThan(0);
  for (const { id, response } of outcomes) {
    if (response.status === 200) {
      expect(response.body.status).toBe("CANCELLED");
      const row = await payout(database, id);
      expect(row.status).toBe("CANCELLED");
      expect(await ledger(database, id)).toEqual({ payments: 0, calls: 0 });
    } else {
      expect(response.status).toBe(409);
      expect(["PROCESSING", "COMPLETED"]).toContain(response.body.current_status);
      await reaches(database, id, "COMPLETED");
      expect((await ledger(database, id)).payments).toBe(1);
    }
  }
  // The cancelled ones stay unpaid after their messages were consumed too.
  await drained(fixtures.broker, worker);
  for (const { id, response } of outcomes) {
    expect((await ledger(database, id)).payments).toBe(response.status === 200 ? 0 : 1);
  }
}, 60_000);
