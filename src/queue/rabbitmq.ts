import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from "amqplib";
import type { Logger } from "../log";
import { workerInFlight } from "../metrics";
import type { Consumer, Delivery, HandlerResult, PayoutMessage, Publisher } from "./port";

export const QUEUE = "payouts";
export const DEAD_LETTER_QUEUE = "payouts.dead";
export const retryQueue = (delayMs: number) => `payouts.retry.${delayMs}ms`;

// A message handed back this many times (a worker crashing on it, say) is dead-lettered instead of
// looping; its payout, if it was PROCESSING, is re-published later by the outbox's relay.
const DELIVERY_LIMIT = 20;
// A handler that threw (the database is down, say) hands its message back after this long.
const REQUEUE_AFTER_MS = 1000;
const CONFIRM_TIMEOUT_MS = 10_000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

/**
 * Declares the topology; idempotent, run on every (re)connect:
 * - `payouts`: quorum queue of payout ids, dead-lettering to `payouts.dead`;
 * - `payouts.retry.<delay>ms`: one per backoff step, whose messages expire back into `payouts`;
 * - `payouts.dead`: what cannot be processed (unparseable, handed back too often), kept for a human.
 */
export async function declareTopology(channel: ConfirmChannel, retryDelays: number[]): Promise<void> {
  await channel.assertQueue(DEAD_LETTER_QUEUE, { durable: true, arguments: { "x-queue-type": "quorum" } });
  await channel.assertQueue(QUEUE, {
    durable: true,
    arguments: {
      "x-queue-type": "quorum",
      "x-dead-letter-exchange": "",
      "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
      "x-delivery-limit": DELIVERY_LIMIT,
    },
  });
  for (const delay of new Set(retryDelays)) {
    await channel.assertQueue(retryQueue(delay), {
      durable: true,
      arguments: { "x-message-ttl": delay, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": QUEUE },
    });
  }
}

/**
 * One AMQP connection with a confirm channel that comes back by itself: on loss it reconnects
 * with exponential backoff and runs `setup` (topology, consumers) again.
 */
class RabbitConnection {
  channel: ConfirmChannel | undefined;
  private connection: ChannelModel | undefined;
  private closing = false;
  private delay = RECONNECT_MIN_MS;
  private timer: Timer | undefined;
  private firstConnect: Promise<void>;
  private resolveFirst: () => void = () => {};

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly setup: (channel: ConfirmChannel) => Promise<void>,
  ) {
    this.firstConnect = new Promise((resolve) => {
      this.resolveFirst = resolve;
    });
    void this.connect();
  }

  /** Resolves at the first successful connection, or after `timeoutMs`, whichever is first. */
  ready(timeoutMs: number): Promise<void> {
    return Promise.race([this.firstConnect, Bun.sleep(timeoutMs)]);
  }

  private async connect(): Promise<void> {
    if (this.closing) return;
    try {
      const connection = await amqp.connect(this.url);
      // close() ran while this was connecting and found nothing to close: a consumer set up now
      // would take messages after its owner stopped.
      if (this.closing) {
        await connection.close().catch(() => {});
        return;
      }
      this.connection = connection;
      connection.on("error", (err) => this.log.warn("broker connection error", { err }));
      connection.on("close", () => this.lost());
      const channel = await connection.createConfirmChannel();
      channel.on("error", (err) => this.log.warn("broker channel error", { err }));
      channel.on("return", (returned: ConsumeMessage) => {
        // The broker had no queue for a message (deleted while we were connected): the publish
        // fails, and a new connection declares the topology again.
        unroutable(channel).add(returned.properties.messageId as string);
        this.log.error("broker returned an unroutable message; reconnecting to declare the queues again", {
          queue: returned.fields.routingKey,
        });
        // After the message's confirm, which follows the return, has been read.
        setImmediate(() => void channel.close().catch(() => {}));
      });
      channel.on("close", () => {
        if (this.channel === channel) void connection.close().catch(() => {});
      });
      await this.setup(channel);
      this.channel = channel;
      this.delay = RECONNECT_MIN_MS;
      this.log.info("broker connected");
      this.resolveFirst();
    } catch (err) {
      this.log.warn("broker unreachable; will retry", { err, retry_in_ms: this.delay });
      await this.connection?.close().catch(() => {});
      this.connection = undefined;
      this.schedule();
    }
  }

  private lost() {
    // Lost before setup finished: setup fails and connect() schedules the retry, only once.
    if (!this.channel) return;
    this.channel = undefined;
    this.connection = undefined;
    if (this.closing) return;
    this.log.warn("broker connection lost; reconnecting");
    this.schedule();
  }

  private schedule() {
    if (this.closing) return;
    this.timer = setTimeout(() => void this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    const connection = this.connection;
    this.channel = undefined;
    this.connection = undefined;
    await connection?.close().catch(() => {});
  }
}

/**
 * Publishes one persistent message and resolves when the broker confirmed it. A broker that
 * accepts the connection but stops answering must not stall the caller (the relay holds row
 * locks meanwhile): past CONFIRM_TIMEOUT_MS the publish counts as failed and is tried again later;
 * should the broker confirm it after all, the duplicate finds nothing to claim.
 */
function send(channel: ConfirmChannel, queue: string, message: PayoutMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the broker did not confirm in time")), CONFIRM_TIMEOUT_MS);
    channel.sendToQueue(
      queue,
      Buffer.from(JSON.stringify(message)),
      // mandatory: a message no queue takes comes back (before its confirm) instead of vanishing.
      { persistent: true, mandatory: true, contentType: "application/json", messageId: message.id },
      (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else if (unroutable(channel).delete(message.id)) reject(new Error(`no queue took the message for ${queue}`));
        else resolve();
      },
    );
  });
}

// Ids of the messages a channel's broker returned as unroutable, not yet matched to their confirm.
const returnedIds = new WeakMap<ConfirmChannel, Set<string>>();
function unroutable(channel: ConfirmChannel): Set<string> {
  const ids = returnedIds.get(channel) ?? new Set<string>();
  returnedIds.set(channel, ids);
  return ids;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A message body this service wrote, or undefined for anything else (poison). */
export function parseMessage(content: Buffer): PayoutMessage | undefined {
  try {
    const body = JSON.parse(content.toString("utf8"));
    if (typeof body !== "object" || body === null || typeof body.id !== "string" || !UUID.test(body.id)) return;
    if (body.resume !== undefined && typeof body.resume !== "boolean") return;
    return body.resume ? { id: body.id, resume: true } : { id: body.id };
  } catch {
    return undefined;
  }
}

/** Publishes payout ids to the durable queue as persistent messages, each confirmed by the broker. */
export function rabbitPublisher(
  url: string,
  retryDelays: number[],
  log: Logger,
): Publisher & { ready(ms: number): Promise<void> } {
  const connection = new RabbitConnection(url, log.child({ component: "publisher" }), (ch) =>
    declareTopology(ch, retryDelays),
  );
  return {
    get connected() {
      return connection.channel !== undefined;
    },
    ready: (ms) => connection.ready(ms),
    async publish(messages) {
      const channel = connection.channel;
      if (!channel) throw new Error("the broker is not connected");
      await Promise.all(messages.map((m) => send(channel, QUEUE, m)));
    },
    close: () => connection.close(),
  };
}

export type RabbitConsumerOptions = {
  /** Messages in flight at once: the channel's prefetch. */
  concurrency: number;
  retryDelays: number[];
  /** How long close() waits for messages in flight before handing them back to the broker. */
  drainTimeoutMs: number;
};

/**
 * Consumes payout ids with manual acks. A message is acked only after the handler returned (the
 * outcome is committed) or after its retry message was confirmed; a handler that throws hands the
 * message back; an unparseable one goes to the dead-letter queue.
 */
export function rabbitConsumer(url: string, options: RabbitConsumerOptions, log: Logger): Consumer {
  let consumerTag: { channel: ConfirmChannel; tag: string } | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const settle = (action: () => void) => {
    try {
      action();
    } catch {
      // The channel closed under us: the broker redelivers the message to another consumer.
    }
  };

  const onMessage = async (
    channel: ConfirmChannel,
    msg: ConsumeMessage,
    handle: (d: Delivery) => Promise<HandlerResult>,
  ) => {
    const message = parseMessage(msg.content);
    if (!message) {
      log.error("poison message sent to the dead-letter queue", {
        content: msg.content.toString("base64").slice(0, 200),
      });
      settle(() => channel.nack(msg, false, false));
      return;
    }
    inFlight++;
    workerInFlight.inc();
    try {
      const { retryAfterMs } = await handle({ ...message, redelivered: msg.fields.redelivered });
      if (retryAfterMs !== undefined) {
        const delay = nearestDelay(options.retryDelays, retryAfterMs);
        await send(channel, retryQueue(delay), { id: message.id, resume: true });
      }
      settle(() => channel.ack(msg));
    } catch (err) {
      // The database is down, say. The message goes to the first retry queue rather than back to
      // the head of `payouts`: a requeue counts against the delivery limit, and an outage longer
      // than 20 requeues would dead-letter payouts that nothing publishes again. Only if that
      // publish fails too is the message handed back.
      log.error("processing failed; will try again", { payout_id: message.id, err });
      try {
        await send(channel, retryQueue(options.retryDelays[0] ?? REQUEUE_AFTER_MS), { id: message.id, resume: true });
        settle(() => channel.ack(msg));
      } catch {
        await Bun.sleep(REQUEUE_AFTER_MS);
        settle(() => channel.nack(msg, false, true));
      }
    } finally {
      inFlight--;
      workerInFlight.dec();
      if (inFlight === 0) drained?.();
    }
  };

  let connection: RabbitConnection | undefined;

  return {
    async start(handle) {
      // Every (re)connection declares the topology and subscribes again.
      connection = new RabbitConnection(url, log.child({ component: "consumer" }), async (channel) => {
        await declareTopology(channel, options.retryDelays);
        await channel.prefetch(options.concurrency);
        const { consumerTag: tag } = await channel.consume(
          QUEUE,
          (msg) => {
            if (msg) void onMessage(channel, msg, handle);
            // The broker cancelled the subscription (the queue was deleted, say): without this the
            // thread would live on deaf. Reconnecting declares the queue and subscribes again.
            else void channel.close().catch(() => {});
          },
          { noAck: false },
        );
        consumerTag = { channel, tag };
      });
    },
    async close() {
      if (consumerTag) {
        const { channel, tag } = consumerTag;
        await channel.cancel(tag).catch(() => {});
      }
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => {
            drained = resolve;
          }),
          Bun.sleep(options.drainTimeoutMs),
        ]);
      }
      await connection?.close();
    },
    get inFlight() {
      return inFlight;
    },
  };
}

function nearestDelay(delays: number[], wanted: number): number {
  return delays.reduce((best, d) => (Math.abs(d - wanted) < Math.abs(best - wanted) ? d : best), delays[0] ?? wanted);
}
