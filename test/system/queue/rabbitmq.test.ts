import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import amqp from "amqplib";
import { createLogger } from "../../../src/lib/log";
import { retryDelays } from "../../../src/payouts/processing/retry-policy";
import type { QueueMessage } from "../../../src/queue/port";
import { rabbitConsumer } from "../../../src/queue/rabbitmq/consumer";
import { rabbitPublisher } from "../../../src/queue/rabbitmq/publisher";
import { declareTopology, QUEUE, retryQueue } from "../../../src/queue/rabbitmq/topology";
import { amqpUrl, type Broker, openBroker, startBrokerProxy } from "../../kit/broker";
import { onCleanup } from "../../kit/cleanup";
import { quiet as log } from "../../kit/log";
import { stopEverything } from "../../kit/processes";
import { eventually } from "../../kit/wait";

/** A logger that keeps every line (debug included), parsed. */
function capture() {
  const lines: { msg: string }[] = [];
  return { lines, log: createLogger("debug", "json", {}, (line) => lines.push(JSON.parse(line))) };
}

describe("the consumer's connection", () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await openBroker();
  });
  beforeEach(() => broker.purge());
  afterEach(stopEverything);
  afterAll(() => broker.close());

  const options = { concurrency: 1, retryDelays: [], drainTimeoutMs: 1000 };

  test("the topology for the largest MAX_ATTEMPTS is one RabbitMQ accepts", async () => {
    const delays = retryDelays({ maxAttempts: 100, retryBaseDelayMs: 1000, taskTimeLimitMs: 1 });
    const connection = await amqp.connect(amqpUrl);
    onCleanup(() => connection.close());
    await declareTopology(await connection.createConfirmChannel(), delays);
  });

  test("a consumer closed before it connected never subscribes", async () => {
    const { lines, log: captured } = capture();
    const consumer = rabbitConsumer({ log: captured }, { url: amqpUrl, ...options });
    onCleanup(() => consumer.close());
    const handled: QueueMessage[] = [];
    await consumer.start(async (delivery) => {
      handled.push(delivery);
      return {};
    });
    await consumer.close();
    // The connection it was opening arrives after the close, and is closed at once, unused.
    await eventually(async () => lines.some((l) => l.msg === "connected after close; the connection is closed again"));

    const publisher = rabbitPublisher({ log: log }, { url: amqpUrl, retryDelays: [] });
    await publisher.ready(10_000);
    await publisher.publish([{ id: Bun.randomUUIDv7() }]);
    await publisher.close();
    expect(await broker.depth(QUEUE)).toEqual({ messages: 1, consumers: 0 });
    expect(handled).toEqual([]);
    expect(lines.filter((l) => l.msg === "broker connected")).toEqual([]);
  });

  test("a connection lost while it declares the topology is retried once: one connection, one subscription", async () => {
    const { lines, log: captured } = capture();
    const proxy = startBrokerProxy();
    proxy.cutNextSetup();
    const consumer = rabbitConsumer({ log: captured }, { url: proxy.url, ...options });
    onCleanup(() => consumer.close());
    await consumer.start(async () => ({}));

    await eventually(async () => (await broker.depth(QUEUE)).consumers === 1, 10_000);
    // Counted, not waited for: one failed setup scheduled exactly one reconnect, which connected;
    // a second connection could only come from a second schedule.
    const reconnects = lines.filter(
      (l) => l.msg === "broker unreachable; will retry" || l.msg === "broker connection lost; reconnecting",
    );
    expect(reconnects).toHaveLength(1);
    expect(lines.filter((l) => l.msg === "broker connected")).toHaveLength(1);
    expect((await broker.depth(QUEUE)).consumers).toBe(1);
  }, 30_000);

  test("a consumer that the broker cancels (its queue deleted) subscribes again", async () => {
    const consumer = rabbitConsumer({ log: log }, { url: amqpUrl, ...options });
    onCleanup(() => consumer.close());
    const handled: string[] = [];
    await consumer.start(async (delivery) => {
      handled.push(delivery.id);
      return {};
    });
    await eventually(async () => (await broker.depth(QUEUE)).consumers === 1);

    await broker.channel.deleteQueue(QUEUE);
    // Until the consumer declared the queue again, asking about it closes the channel that asks.
    const probe = await amqp.connect(amqpUrl);
    probe.on("error", () => {});
    onCleanup(() => probe.close());
    await eventually(async () => {
      const channel = await probe.createChannel();
      channel.on("error", () => {});
      const queue = await channel.checkQueue(QUEUE).catch(() => undefined);
      await channel.close().catch(() => {});
      return queue?.consumerCount === 1;
    }, 15_000);

    const publisher = rabbitPublisher({ log: log }, { url: amqpUrl, retryDelays: [] });
    await publisher.ready(10_000);
    const id = Bun.randomUUIDv7();
    await publisher.publish([{ id }]);
    await publisher.close();

    await eventually(async () => handled.includes(id));
  }, 30_000);

  test("a message whose handler threw waits out a retry delay and comes back for takeover, without a requeue", async () => {
    const delay = 200;
    const consumer = rabbitConsumer({ log: log }, { url: amqpUrl, ...options, retryDelays: [delay] });
    onCleanup(() => consumer.close());
    const seen: QueueMessage[] = [];
    await consumer.start(async (delivery) => {
      seen.push(delivery);
      if (seen.length === 1) throw new Error("the database is down");
      return {};
    });
    await eventually(async () => (await broker.depth(QUEUE)).consumers === 1);

    const publisher = rabbitPublisher({ log: log }, { url: amqpUrl, retryDelays: [delay] });
    await publisher.ready(10_000);
    const id = Bun.randomUUIDv7();
    await publisher.publish([{ id }]);
    await publisher.close();

    await eventually(async () => seen.length === 2);
    // Not a requeue (which would count against the delivery limit and be flagged redelivered):
    // a new message through the retry queue, marked for takeover of a payout it may have claimed.
    expect(seen).toEqual([
      { id, redelivered: false },
      { id, resume: true, redelivered: false },
    ]);
    await eventually(async () => (await broker.depth(QUEUE)).messages === 0);
    expect(await broker.depth(retryQueue(delay))).toEqual({ messages: 0, consumers: 0 });
  }, 30_000);

  test("a publish to a queue deleted under a live connection fails instead of vanishing, and the next one lands", async () => {
    const publisher = rabbitPublisher({ log: log }, { url: amqpUrl, retryDelays: [] });
    onCleanup(() => publisher.close());
    await publisher.ready(10_000);
    await broker.channel.deleteQueue(QUEUE);

    // Confirmed by the broker but routed nowhere: without `mandatory` this would resolve.
    await expect(publisher.publish([{ id: Bun.randomUUIDv7() }])).rejects.toThrow();
    // The publisher reconnects, declaring the queue again; then publishing works.
    const id = Bun.randomUUIDv7();
    await eventually(() =>
      publisher.publish([{ id }]).then(
        () => true,
        () => false,
      ),
    );
    await eventually(async () => (await broker.depth(QUEUE)).messages === 1);
  }, 30_000);
});
