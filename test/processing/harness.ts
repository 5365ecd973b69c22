import { afterAll, afterEach, beforeAll, beforeEach } from "bun:test";
// What the processing tests share: the run's broker seen from outside, payouts and the simulated
// gateway's ledger read from the database, the api and a worker in this process, real child
// processes, and a TCP proxy that plays a broker outage.
import { join } from "node:path";
import amqp from "amqplib";
import type { Socket, Subprocess } from "bun";
import { eq, sql } from "drizzle-orm";
import type { PgInsertValue } from "drizzle-orm/pg-core";
import type { LogLevel } from "../../src/config";
import type { Database } from "../../src/db/client";
import { type PayoutRow, payoutOutbox, payouts, simulatedGatewayPayments } from "../../src/db/schema";
import { simulatedGateway } from "../../src/gateway/simulated";
import { systemClock } from "../../src/lib/clock";
import { createLogger, type Logger } from "../../src/lib/log";
import { createOutbox, type OutboxOptions } from "../../src/payouts/processing/outbox";
import { createProcessor } from "../../src/payouts/processing/processor";
import { type RetryPolicy, retryDelays } from "../../src/payouts/processing/retry-policy";
import type { Consumer, PayoutMessage, Publisher } from "../../src/queue/port";
import { rabbitConsumer } from "../../src/queue/rabbitmq/consumer";
import { rabbitPublisher } from "../../src/queue/rabbitmq/publisher";
import { DEAD_LETTER_QUEUE, declareTopology, QUEUE, retryQueue } from "../../src/queue/rabbitmq/topology";
import { eventually, resetDatabase, testApi, testDatabase } from "../helpers";

const ROOT = join(import.meta.dir, "..", "..");
const LOG_LEVEL = process.env.TEST_LOG_LEVEL as LogLevel | undefined;

/**
 * For what runs inside the test process: silent, since tests provoke errors on purpose;
 * TEST_LOG_LEVEL=debug shows it all, from child processes too.
 */
export const quiet: Logger = LOG_LEVEL
  ? createLogger(LOG_LEVEL, "pretty")
  : { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
export const amqpUrl = () => process.env.AMQP_URL as string;

/** The processing settings of the tests unless one says otherwise: the defaults of the config. */
export const PROCESSING: RetryPolicy = { maxAttempts: 5, retryBaseDelayMs: 1000, taskTimeLimitMs: 60_000 };
// Every retry delay a test configures, so that each retry queue exists and is purged between tests.
const RETRY_DELAYS = [
  ...retryDelays(PROCESSING),
  ...retryDelays({ ...PROCESSING, maxAttempts: 3, retryBaseDelayMs: 100 }),
];
const ALL_QUEUES = [QUEUE, DEAD_LETTER_QUEUE, ...new Set(RETRY_DELAYS.map(retryQueue))];

/** The run's vhost as an operator sees it: queue depths, raw messages, purges. */
export async function openBroker() {
  const connection = await amqp.connect(amqpUrl());
  const channel = await connection.createConfirmChannel();
  await declareTopology(channel, RETRY_DELAYS);
  return {
    channel,
    /** Empties every queue of the topology, so that no test sees another's messages. */
    async purge() {
      for (const queue of ALL_QUEUES) await channel.purgeQueue(queue);
    },
    /** Messages ready in `queue` (not those delivered and unacked) and its consumers. */
    async depth(queue: string) {
      const { messageCount, consumerCount } = await channel.checkQueue(queue);
      return { messages: messageCount, consumers: consumerCount };
    },
    /** Puts bytes on the main queue as any producer could, confirmed by the broker. */
    async sendRaw(content: string) {
      channel.sendToQueue(QUEUE, Buffer.from(content), { persistent: true });
      await channel.waitForConfirms();
    },
    close: () => connection.close(),
  };
}
export type Broker = Awaited<ReturnType<typeof openBroker>>;

export async function payout(database: Database, id: string): Promise<PayoutRow> {
  const [row] = await database.db.select().from(payouts).where(eq(payouts.id, id));
  if (!row) throw new Error(`payout ${id} is not in the database`);
  return row;
}

/** What the simulated gateway did for a payout: `payments` is how many times money moved. */
export async function ledger(database: Database, id: string): Promise<{ payments: number; calls: number }> {
  const rows = await database.db
    .select({ calls: simulatedGatewayPayments.calls })
    .from(simulatedGatewayPayments)
    .where(eq(simulatedGatewayPayments.payoutId, id));
  return { payments: rows.length, calls: rows.reduce((sum, r) => sum + r.calls, 0) };
}

/** Whether the payout's id is still owed to the broker: its row in the outbox. */
export async function inOutbox(database: Database, id: string): Promise<boolean> {
  return (await database.db.$count(payoutOutbox, eq(payoutOutbox.payoutId, id))) > 0;
}

export async function countByStatus(database: Database): Promise<Record<string, number>> {
  const rows = await database.db
    .select({ status: payouts.status, count: sql<number>`count(*)::int` })
    .from(payouts)
    .groupBy(payouts.status);
  return Object.fromEntries(rows.map((r) => [r.status, r.count]));
}

/** Resolves with the payout once it is in `status`. */
export function reaches(database: Database, id: string, status: PayoutRow["status"], timeoutMs = 20_000) {
  return eventually(async () => {
    const row = await payout(database, id);
    return row.status === status && row;
  }, timeoutMs);
}

/** A payout written straight to the table, as a crash or an older version could leave it. */
export async function insertPayout(database: Database, values: Partial<PgInsertValue<typeof payouts>> = {}) {
  const [row] = await database.db
    .insert(payouts)
    .values({ id: Bun.randomUUIDv7(), amount: "10.00", currency: "EUR", recipientDetails: "DE89 3704", ...values })
    .returning();
  return row as PayoutRow;
}

const body = { amount: "12.34", currency: "USD", recipient_details: "40817810099910004312, BIC 044525225" };

/** A RabbitMQ publisher of the run's vhost, connected. */
export async function startPublisher() {
  const publisher = rabbitPublisher({ log: quiet }, { url: amqpUrl(), retryDelays: retryDelays(PROCESSING) });
  cleanups.push(() => publisher.close());
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
  cleanups.push(() => outbox.stop());
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
  const { request } = testApi(database, { onCreated: (id) => outbox.handOff(id) });
  const create = async () => {
    const created = await request("POST", "/api/payouts/", body);
    if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${created.text}`);
    return created.body.id as string;
  };
  return {
    request,
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
  cleanups.push(() => database.close());
  const processing: RetryPolicy = {
    maxAttempts: options.maxAttempts ?? PROCESSING.maxAttempts,
    retryBaseDelayMs: options.retryBaseDelayMs ?? PROCESSING.retryBaseDelayMs,
    taskTimeLimitMs: options.taskTimeLimitMs ?? PROCESSING.taskTimeLimitMs,
  };
  const consumers = (await broker.depth(QUEUE)).consumers;
  const consumer = rabbitConsumer(
    { log: quiet },
    {
      url: amqpUrl(),
      concurrency: options.concurrency ?? 10,
      retryDelays: retryDelays(processing),
      drainTimeoutMs: 10_000,
    },
  );
  const gateway = simulatedGateway(
    { db: database.db },
    {
      latencyMs: options.latencyMs ?? 20,
      failureRate: options.failureRate ?? 0,
    },
  );
  await consumer.start(
    createProcessor(
      { db: database.db, availability: database.availability, gateway, clock: systemClock, log: quiet },
      processing,
    ),
  );
  cleanups.push(() => consumer.close());
  await eventually(async () => (await broker.depth(QUEUE)).consumers > consumers);
  return consumer;
}

/** Until nothing is waiting in the main queue and the consumer holds no message. */
export function drained(broker: Broker, consumer: Consumer) {
  return eventually(async () => (await broker.depth(QUEUE)).messages === 0 && consumer.inFlight === 0);
}

const cleanups: (() => Promise<void>)[] = [];
const children = new Set<Subprocess>();

/**
 * `bun src/main.ts --role=<role>` on the run's database and vhost. Logs at error level unless
 * TEST_LOG_LEVEL says otherwise; stderr goes to the test's output.
 */
export function spawnRole(role: "api" | "worker" | "all", env: Record<string, string> = {}) {
  const child = Bun.spawn([process.execPath, "src/main.ts", `--role=${role}`], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: LOG_LEVEL ?? "error", DB_POOL_SIZE: "4", METRICS_PORT: "0", ...env },
    stdout: LOG_LEVEL ? "inherit" : "ignore",
    stderr: "inherit",
  });
  children.add(child);
  return child;
}

/** A worker process, resolved once its threads consume the queue. */
export async function spawnWorker(broker: Broker, env: Record<string, string> = {}) {
  const threads = Number(env.WORKER_THREADS ?? "1");
  const consumers = (await broker.depth(QUEUE)).consumers;
  const child = spawnRole("worker", { WORKER_THREADS: String(threads), ...env });
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the worker exited with ${child.exitCode}`);
    return (await broker.depth(QUEUE)).consumers >= consumers + threads;
  }, 20_000);
  return child;
}

/** A port nobody listens on right now. */
export function freePort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

/** Runs `stop` in stopEverything(), for what a test starts by hand. */
export function onCleanup(stop: () => Promise<void>) {
  cleanups.push(stop);
}

/**
 * Stops what a test started, even when the test failed: children are killed, the rest is stopped
 * in reverse order. One failing stop does not keep the others from running.
 */
export async function stopEverything(): Promise<void> {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await child.exited;
  }
  children.clear();
  const failures: unknown[] = [];
  for (let stop = cleanups.pop(); stop; stop = cleanups.pop()) await stop().catch((err) => failures.push(err));
  if (failures.length > 0) throw new AggregateError(failures, "stopping what the test started failed");
}

type End = { link: Link; backlog: Uint8Array[] };
type Link = { client: Socket<End>; upstream?: Socket<End>; early: Uint8Array[]; sent: Uint8Array };

// AMQP 0-9-1 as a client writes it: an 8-byte protocol header, then frames of type (1 byte),
// channel (2), size (4), payload, end marker (1). A method's payload starts with its class and
// method ids: queue.declare is 50, 10.
const PROTOCOL_HEADER = 8;
function declaresQueue(sent: Uint8Array): boolean {
  const view = new DataView(sent.buffer, sent.byteOffset, sent.byteLength);
  for (let at = PROTOCOL_HEADER; at + 11 <= sent.length; at += 8 + view.getUint32(at + 3)) {
    if (view.getUint8(at) === 1 && view.getUint16(at + 7) === 50 && view.getUint16(at + 9) === 10) return true;
  }
  return false;
}

// A socket may take part of a chunk: the rest waits for its drain event.
function forward(socket: Socket<End>, chunk: Uint8Array) {
  const { backlog } = socket.data;
  if (backlog.length > 0) {
    backlog.push(new Uint8Array(chunk));
    return;
  }
  const written = socket.write(chunk);
  if (written < chunk.length) backlog.push(new Uint8Array(chunk.subarray(Math.max(written, 0))));
}

function flush(socket: Socket<End>) {
  const { backlog } = socket.data;
  while (backlog.length > 0) {
    const chunk = backlog[0] as Uint8Array;
    const written = socket.write(chunk);
    if (written < chunk.length) {
      backlog[0] = chunk.subarray(Math.max(written, 0));
      return;
    }
    backlog.shift();
  }
}

/**
 * A TCP proxy to RabbitMQ that a test controls: `down()` cuts every connection through it and
 * refuses new ones (an outage as a client sees it), `up()` lets them through again,
 * `cutNextSetup()` cuts one connection while it declares the topology. The real broker, which
 * other runs share, is never touched.
 */
export function startBrokerProxy() {
  const target = new URL(amqpUrl());
  const links = new Set<Link>();
  let open = true;
  let cutAtQueueDeclare = false;

  const upstreamHandlers = {
    data(socket: Socket<End>, chunk: Uint8Array) {
      forward(socket.data.link.client, chunk);
    },
    drain: flush,
    close(socket: Socket<End>) {
      socket.data.link.client.end();
    },
    error(socket: Socket<End>) {
      socket.data.link.client.end();
    },
  };

  const server = Bun.listen<End>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        if (!open) {
          client.terminate();
          return;
        }
        const link: Link = { client, early: [], sent: new Uint8Array() };
        client.data = { link, backlog: [] };
        links.add(link);
        Bun.connect<End>({
          hostname: target.hostname,
          port: Number(target.port || 5672),
          data: { link, backlog: [] },
          socket: upstreamHandlers,
        }).then(
          (upstream) => {
            link.upstream = upstream;
            for (const chunk of link.early) forward(upstream, chunk);
            link.early = [];
          },
          () => client.end(),
        );
      },
      data(client, chunk) {
        const { link } = client.data;
        if (cutAtQueueDeclare) {
          link.sent = Buffer.concat([link.sent, chunk]);
          if (declaresQueue(link.sent)) {
            cutAtQueueDeclare = false;
            links.delete(link);
            link.upstream?.terminate();
            client.terminate();
            return;
          }
        }
        if (link.upstream) forward(link.upstream, chunk);
        else link.early.push(new Uint8Array(chunk));
      },
      drain: flush,
      close(client) {
        const { link } = client.data ?? {};
        if (!link) return;
        links.delete(link);
        link.upstream?.end();
      },
      error(client) {
        client.end();
      },
    },
  });

  const url = new URL(amqpUrl());
  url.hostname = "127.0.0.1";
  url.port = String(server.port);
  const proxy = {
    /** AMQP_URL through the proxy: same credentials, same vhost. */
    url: url.toString(),
    down() {
      open = false;
      for (const link of links) {
        link.upstream?.terminate();
        link.client.terminate();
      }
      links.clear();
    },
    up() {
      open = true;
    },
    /** The next connection to declare a queue is cut right then: lost in the middle of its setup. */
    cutNextSetup() {
      cutAtQueueDeclare = true;
    },
  };
  cleanups.push(async () => {
    proxy.down();
    server.stop(true);
  });
  return proxy;
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
