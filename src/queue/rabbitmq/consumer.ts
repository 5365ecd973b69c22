import type { ConsumeMessage } from "amqplib";
import { nearestDelay } from "../../lib/backoff";
import type { Logger } from "../../lib/log";
import { deadline } from "../../lib/timers";
import { workerInFlight } from "../../metrics";
import { type Consumer, HAND_BACK_AFTER_MS, type HandlerResult, type PayoutMessage, type QueueMessage } from "../port";
import { type Link, RabbitConnection } from "./connection";
import { send } from "./publisher";
import { declareTopology, QUEUE, retryQueue } from "./topology";

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

export type RabbitConsumerOptions = {
  url: string;
  /**
   * Gateway calls in flight at once (the processor's limit). The channel's prefetch is twice that:
   * the other half are claimed, or have their outcome written, while the first half call.
   */
  concurrency: number;
  retryDelays: number[];
  /** How long close() waits for messages in flight before handing them back to the broker. */
  drainTimeoutMs: number;
};

/**
 * Consumes payout ids with manual acks. A message is acked only after the handler returned (the
 * outcome is committed) or after its retry message was confirmed; a handler that throws hands the
 * message back through a retry queue; an unparseable one goes to the dead-letter queue.
 */
export function rabbitConsumer({ log }: { log: Logger }, options: RabbitConsumerOptions): Consumer {
  let subscription: { link: Link; tag: string } | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const settle = (action: () => void) => {
    try {
      action();
    } catch {
      // The channel closed under us: the broker redelivers the message to another consumer.
    }
  };

  const onMessage = async (link: Link, msg: ConsumeMessage, handle: (d: QueueMessage) => Promise<HandlerResult>) => {
    const { channel } = link;
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
        await send(link, retryQueue(nearestDelay(options.retryDelays, retryAfterMs)), { id: message.id, resume: true });
      }
      settle(() => channel.ack(msg));
    } catch (err) {
      // The database is down, say. The message goes to the first retry queue rather than back to
      // the head of `payouts`: a requeue counts against the delivery limit, and an outage longer
      // than 20 requeues would dead-letter payouts that nothing publishes again. Only if that
      // publish fails too is the message handed back.
      log.error("processing failed; will try again", { payout_id: message.id, err });
      try {
        await send(link, retryQueue(options.retryDelays[0] ?? HAND_BACK_AFTER_MS), { id: message.id, resume: true });
        settle(() => channel.ack(msg));
      } catch {
        await Bun.sleep(HAND_BACK_AFTER_MS);
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
      connection = new RabbitConnection(options.url, log.child({ component: "consumer" }), async (link) => {
        const { channel } = link;
        await declareTopology(channel, options.retryDelays);
        await channel.prefetch(options.concurrency * 2);
        const { consumerTag } = await channel.consume(
          QUEUE,
          (msg) => {
            if (msg) void onMessage(link, msg, handle);
            // The broker cancelled the subscription (the queue was deleted, say): without this the
            // thread would live on deaf. Reconnecting declares the queue and subscribes again.
            else void channel.close().catch(() => {});
          },
          { noAck: false },
        );
        subscription = { link, tag: consumerTag };
      });
    },
    async close() {
      if (subscription) {
        const { link, tag } = subscription;
        await link.channel.cancel(tag).catch(() => {});
      }
      if (inFlight > 0) {
        const allSettled = new Promise<void>((resolve) => {
          drained = resolve;
        });
        await deadline(allSettled, options.drainTimeoutMs).catch(() => {});
      }
      await connection?.close();
    },
    get inFlight() {
      return inFlight;
    },
  };
}
