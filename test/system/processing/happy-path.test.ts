import { expect, test } from "bun:test";
import { parseKey } from "../../../src/keys/secret";
import { inOutbox, ledger, reaches } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";
import { processingFixtures, startApi, startWorker } from "./harness";

const fixtures = processingFixtures();
const { database } = fixtures;

test("a created payout goes through RabbitMQ to a worker and ends COMPLETED, paid once", async () => {
  const api = await startApi(database);
  await startWorker(fixtures.broker);

  const id = await api.create();

  const done = await reaches(database, id, "COMPLETED");
  expect(done.processedAt).toBeInstanceOf(Date);
  expect(done.failureReason).toBeNull();
  expect(done.attempts).toBe(1);
  // Confirmed by the broker, it leaves the outbox (one DELETE gathers the hand-offs of 100 ms).
  await eventually(async () => !(await inOutbox(database, id)));
  expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });

  const read = await api.request("GET", `/api/payouts/${id}/`);
  expect(read.body).toMatchObject({ id, status: "COMPLETED", failure_reason: null });
  expect(read.body.processed_at).toBe(done.processedAt?.toISOString());

  // Who did it: the key that created it, then the worker (system) that claimed and paid it.
  const events = await api.request("GET", `/api/payouts/${id}/events/`);
  expect(events.body.results.map((e: { type: string; actor: string }) => [e.type, e.actor])).toEqual([
    ["payout.created", parseKey((await api.key()) as string)?.id],
    ["payout.processing", "system"],
    ["payout.completed", "system"],
  ]);
});
