// The run's RabbitMQ vhost, made for the tests that ask for one: the first module to import this
// one makes it (one per `bun test` run, as test/kit/db.ts makes one database) and names it in
// AMQP_URL for the processes the tests spawn. Tests that do not import it need no RabbitMQ.
import amqp from "amqplib";
import { type RetryPolicy, retryDelays } from "../../src/payouts/processing/retry-policy";
import { DEAD_LETTER_QUEUE, declareTopology, QUEUE, retryQueue } from "../../src/queue/rabbitmq/topology";
import { onCleanup } from "./cleanup";
// The vhost is made after the database: a run that stops at a failed vhost leaves a finished
// database for the reaper to drop, never one still being made.
import "./db";
import { startTcpProxy } from "./proxy";
import { drop, dropAtExit, rabbitmqctl } from "./reaper";

const amqpBase = process.env.TEST_AMQP_BASE_URL ?? "amqp://guest:guest@127.0.0.1:5672";

async function createVhost(): Promise<string> {
  const vhost = `payouts_test_${process.pid}_${Date.now()}`;
  dropAtExit({ vhost });
  try {
    await rabbitmqctl("add_vhost", vhost);
    await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
  } catch (error) {
    await drop({ vhost }).catch(() => {});
    throw new Error(
      `the tests could not make their RabbitMQ vhost ${vhost} (nothing of it is left; a database the run made is dropped when it ends): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return `${amqpBase}/${vhost}`;
}

export const amqpUrl = await createVhost();
process.env.AMQP_URL = amqpUrl;

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
  const connection = await amqp.connect(amqpUrl);
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

/**
 * The TCP proxy (./proxy.ts) in front of the run's RabbitMQ, with its AMQP_URL: same credentials,
 * same vhost. `cutNextSetup()` cuts the next connection that declares a queue, right then: lost in
 * the middle of its set-up. The real broker, which other runs share, is never touched.
 */
export function startBrokerProxy() {
  const target = new URL(amqpUrl);
  const proxy = startTcpProxy(target.hostname, Number(target.port || 5672));
  onCleanup(async () => proxy.stop());
  return { ...proxy, url: proxy.in(amqpUrl), cutNextSetup: () => proxy.cutWhenSent(declaresQueue) };
}
