import { expect, test } from "bun:test";
import { DEAD_LETTER_QUEUE, QUEUE } from "../../../src/queue/rabbitmq/topology";
import { reaches } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";
import { processingFixtures, startApi, startWorker } from "./harness";

const fixtures = processingFixtures();
const { database } = fixtures;

const poison = [
  "not json",
  "[]",
  "null",
  JSON.stringify({ id: "42" }),
  JSON.stringify({ id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10", resume: "yes" }),
];

test("poison messages go to the dead-letter queue once, and the worker carries on", async () => {
  const api = await startApi(database);
  for (const content of poison) await fixtures.broker.sendRaw(content);
  // One message at a time, in the queue's order: the payout published last is handled last.
  await startWorker(fixtures.broker, { concurrency: 1 });
  await reaches(database, await api.create(), "COMPLETED");

  await eventually(async () => (await fixtures.broker.depth(DEAD_LETTER_QUEUE)).messages === poison.length);
  expect((await fixtures.broker.depth(QUEUE)).messages).toBe(0);

  const dead: string[] = [];
  for (let i = 0; i < poison.length; i++) {
    const message = await fixtures.broker.channel.get(DEAD_LETTER_QUEUE, { noAck: true });
    if (!message) throw new Error("the dead-letter queue has fewer messages than it reported");
    dead.push(message.content.toString());
    // Dead-lettered once, rejected by the consumer: not handed back and forth.
    const [death] = message.properties.headers?.["x-death"] ?? [];
    expect(death).toMatchObject({ queue: QUEUE, reason: "rejected", count: 1 });
  }
  expect(dead.sort()).toEqual([...poison].sort());
});
