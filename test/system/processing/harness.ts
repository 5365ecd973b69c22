import { afterAll, afterEach, beforeAll, beforeEach } from "bun:test";
import type { Database } from "../../../src/db/client";
import { simulatedGateway } from "../../../src/gateway/simulated";
// What the processing tests share: the api and a worker in this process, a worker process, and the
// hooks of every processing test file. The run's broker, the processes and the payouts' reads come
// from the kit.
import { systemClock } from "../../../src/lib/clock";
import { createOutbox, type OutboxOptions } from "../../../src/payouts/processing/outbox";
import { createProcessor } from "../../../src/payouts/processing/processor";
import { type RetryPolicy, retryDelays } from "../../../src/payouts/processing/retry-policy";
import type { Consumer, PayoutMessage, Publisher } from "../../../src/queue/port";
import { rabbitConsumer } from "../../../src/queue/rabbitmq/consumer";
import { rabbitPublisher } from "../../../src/queue/rabbitmq/publisher";
import { QUEUE } from "../../../src/queue/rabbitmq/topology";
import { testApi } from "../../kit/api";
import { amqpUrl, type Broker, openBroker, PROCESSING } from "../../kit/broker";
import { onCleanup } from "../../kit/cleanup";
import { resetDatabase, testDatabase } from "../../kit/db";
import { inOutbox } from "../../kit/fixtures";
import { quiet } from "../../kit/log";
import { spawnRole, stopEverything } from "../../kit/processes";
import { eventually } from "../../kit/wait";

const body = { amount: "12.34", currency: "USD", recipient_details: "40817810099910004312, BIC 044525225" };

/** A RabbitMQ publisher of the run's vhost, connected. */
export async function startPublisher() {
  const publisher = rabbitPublisher({ log: quiet }, { url: amqpUrl, retryDelays: retryDelays(PROCESSING) });
  onCleanup(() => publisher.close());
  await publisher.ready(10_000);
  if (!publisher.connected) throw new Error("the test publisher could not reach RabbitMQ");
  return publisher;
}

/** An outbox as the roles make it, with a grace and a stuck threshold a test can wait out. */
export function startOutbox(database: Database, publisher: Publisher, options: Partial<OutboxOptions> = {}) {
  const outbox = createOutbox(
    { db: database.db, publisher, log: quiet },
    { intervalMs: 100, graceMs: 5000, stuckAfterMs: 600_000, republishAfterMs: 600_000, ...options },
  );
  onCleanup(() => outbox.stop());
  return outbox;
}

/**
 * The api in this process, wired as `--role=api` wires it: each created payout is handed to a
 * real RabbitMQ publisher through the outbox. The relay is not started: tests that need it start
 * it or run the real process.
 */
export async function startApi(database: Database) {
  const publisher = await startPublisher();
  const outbox = startOutbox(database, publisher);
  const { request, key } = testApi(database, { onCreated: (id) => outbox.handOff(id) });
  const create = async () => {
    const created = await request("POST", "/api/payouts/", body);
    if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${created.text}`);
    return created.body.id as string;
  };
  return {
    request,
    /** The API key the requests send (every scope). */
    key,
    create,
    /** Published once the broker confirmed it (the hand-off deletes its outbox row). */
    async createPublished() {
      const id = await create();
      await eventually(async () => !(await inOutbox(database, id)));
      return id;
    },
    /** Publishes messages of the test's own making, confirmed. */
    publish: (messages: PayoutMessage[]) => publisher.publish(messages),
  };
}

export type WorkerOptions = Partial<RetryPolicy> & {
  concurrency?: number;
  latencyMs?: number;
  failureRate?: number;
};

/**
 * A worker thread's consumer in this process: the parts thread.ts puts together, with a pool of
 * its own. Resolved once RabbitMQ lists it as a consumer of the queue.
 */
export async function startWorker(broker: Broker, options: WorkerOptions = {}): Promise<Consumer> {
  const database = testDatabase(5);
  onCleanup(() => database.close());
  const processing: RetryPolicy = {
    maxAttempts: options.maxAttempts ?? PROCESSING.maxAttempts,
    retryBaseDelayMs: options.retryBaseDelayMs ?? PROCESSING.retryBaseDelayMs,
    taskTimeLimitMs: options.taskTimeLimitMs ?? PROCESSING.taskTimeLimitMs,
  };
  const consumers = (await broker.depth(QUEUE)).consumers;
  const consumer = rabbitConsumer(
    { log: quiet },
    {
      url: amqpUrl,
      concurrency: options.concurrency ?? 10,
      retryDelays: retryDelays(processing),
      drainTimeoutMs: 10_000,
    },
  );
  const gateway = simulatedGateway(
    { db: database.db },
    { latencyMs: options.latencyMs ?? 20, failureRate: options.failureRate ?? 0 },
  );
  await consumer.start(
    createProcessor(
      { db: database.db, availability: database.availability, gateway, clock: systemClock, log: quiet },
      processing,
    ),
  );
  onCleanup(() => consumer.close());
  await eventually(async () => (await broker.depth(QUEUE)).consumers > consumers);
  return consumer;
}

/** Until nothing is waiting in the main queue and the consumer holds no message. */
export function drained(broker: Broker, consumer: Consumer) {
  return eventually(async () => (await broker.depth(QUEUE)).messages === 0 && consumer.inFlight === 0);
}

/** A worker process, resolved once its threads consume the queue. */
export async function spawnWorker(broker: Broker, env: Record<string, string> = {}) {
  const threads = Number(env.WORKER_THREADS ?? "1");
  const consumers = (await broker.depth(QUEUE)).consumers;
  const child = spawnRole("worker", { WORKER_THREADS: String(threads), ...env });
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the worker exited with ${child.exitCode}`);
    return (await broker.depth(QUEUE)).consumers >= consumers + threads;
  }, 30_000);
  return child;
}

/**
 * The hooks of every processing test file: a database pool and a view of the broker, both emptied
 * before each test, and whatever a test started stopped after it, even when it failed.
 */
export function processingFixtures(poolSize = 5) {
  const fixtures = { database: testDatabase(poolSize), broker: undefined as unknown as Broker };
  beforeAll(async () => {
    fixtures.broker = await openBroker();
  });
  beforeEach(async () => {
    await fixtures.broker.purge();
    await resetDatabase(fixtures.database);
  });
  afterEach(stopEverything);
  afterAll(async () => {
    await fixtures.broker.close();
    await fixtures.database.close();
  });
  return fixtures;
}
