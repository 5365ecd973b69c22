import { expect, test } from "bun:test";
import { memoryQueue } from "../../../src/queue/memory";
import type { HandlerResult, QueueMessage } from "../../../src/queue/port";
import { quiet as log } from "../../kit/log";
import { eventually } from "../../kit/wait";

const id = (n: number) => `0193b6c2-5f1e-7c3a-9a51-${String(n).padStart(12, "0")}`;

test("messages published before the consumer starts wait for it, and are delivered once each", async () => {
  const { publisher, consumer } = memoryQueue({ log }, { concurrency: 10 });
  await publisher.publish([{ id: id(1) }, { id: id(2), resume: true }]);
  const seen: QueueMessage[] = [];
  await consumer.start(async (delivery) => {
    seen.push(delivery);
    return {};
  });
  await eventually(async () => seen.length === 2);
  expect(seen).toEqual([
    { id: id(1), redelivered: false },
    { id: id(2), resume: true, redelivered: false },
  ]);
  await consumer.close();
});

test("no more than `concurrency` messages are in flight at once", async () => {
  const { publisher, consumer } = memoryQueue({ log }, { concurrency: 3 });
  const release = Promise.withResolvers<void>();
  let running = 0;
  let most = 0;
  let done = 0;
  await consumer.start(async () => {
    running++;
    most = Math.max(most, running);
    await release.promise;
    running--;
    done++;
    return {};
  });
  await publisher.publish(Array.from({ length: 10 }, (_, n) => ({ id: id(n) })));
  await eventually(async () => consumer.inFlight === 3);
  release.resolve();
  await eventually(async () => done === 10);
  expect(most).toBe(3);
  await consumer.close();
});

test("a handler that asks for a retry gets the message back after the delay, as a takeover", async () => {
  const { publisher, consumer } = memoryQueue({ log }, { concurrency: 1 });
  const seen: QueueMessage[] = [];
  await consumer.start(async (delivery): Promise<HandlerResult> => {
    seen.push(delivery);
    return seen.length === 1 ? { retryAfterMs: 20 } : {};
  });
  await publisher.publish([{ id: id(1) }]);
  await eventually(async () => seen.length === 2);
  expect(seen[1]).toEqual({ id: id(1), resume: true, redelivered: false });
  // The second answer asked for nothing: once it is done, nothing is in flight or scheduled.
  await eventually(async () => consumer.inFlight === 0);
  expect(consumer.scheduled).toBe(0);
  expect(seen).toHaveLength(2);
  await consumer.close();
});

test("a handler that throws gets its message back, marked redelivered", async () => {
  const { publisher, consumer } = memoryQueue({ log }, { concurrency: 1 });
  const seen: QueueMessage[] = [];
  await consumer.start(async (delivery) => {
    seen.push(delivery);
    if (seen.length === 1) throw new Error("the database is down");
    return {};
  });
  await publisher.publish([{ id: id(1) }]);
  await eventually(async () => seen.length === 2, 5000);
  expect(seen[1]).toEqual({ id: id(1), redelivered: true });
  await consumer.close();
});

test("close() waits for the messages in flight, then nothing more is delivered or accepted", async () => {
  const { publisher, consumer } = memoryQueue({ log }, { concurrency: 1 });
  const release = Promise.withResolvers<void>();
  const seen: string[] = [];
  let finished = 0;
  await consumer.start(async (delivery) => {
    seen.push(delivery.id);
    await release.promise;
    finished++;
    return { retryAfterMs: 10 };
  });
  await publisher.publish([{ id: id(1) }, { id: id(2) }]);
  await eventually(async () => consumer.inFlight === 1);

  const closing = consumer.close();
  release.resolve();
  await closing;
  expect(finished).toBe(1);
  await expect(publisher.publish([{ id: id(3) }])).rejects.toThrow();
  // Neither the waiting message nor the retry the finished one asked for comes back: nothing is
  // scheduled, and a closed queue delivers nothing it holds.
  expect(consumer.scheduled).toBe(0);
  expect(consumer.inFlight).toBe(0);
  expect(seen).toEqual([id(1)]);
});
