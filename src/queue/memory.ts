import type { Logger } from "../lib/log";
import { workerInFlight } from "../metrics";
import {
  type Consumer,
  HAND_BACK_AFTER_MS,
  type HandlerResult,
  type PayoutMessage,
  type Publisher,
  type QueueMessage,
} from "./port";

/**
 * The in-process queue of the embedded default (role `all` without AMQP_URL): the same contract
 * as RabbitMQ in one process. It keeps nothing across a restart; the outbox re-publishes what
 * was not finished (see `recoverInProcess`).
 */
export function memoryQueue(
  { log }: { log: Logger },
  { concurrency }: { concurrency: number },
): { publisher: Publisher; consumer: Consumer & { readonly scheduled: number } } {
  const waiting: QueueMessage[] = [];
  const timers = new Set<Timer>();
  let handler: ((delivery: QueueMessage) => Promise<HandlerResult>) | undefined;
  let inFlight = 0;
  let closed = false;
  let drained: (() => void) | undefined;

  const later = (ms: number, delivery: QueueMessage) => {
    // Closed: the process is stopping, and recovery at the next start publishes it again.
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      waiting.push(delivery);
      pump();
    }, ms);
    timers.add(timer);
  };

  const run = async (delivery: QueueMessage, handle: (d: QueueMessage) => Promise<HandlerResult>) => {
    try {
      const { retryAfterMs } = await handle(delivery);
      if (retryAfterMs !== undefined) later(retryAfterMs, { id: delivery.id, resume: true, redelivered: false });
    } catch (err) {
      log.error("processing failed; the message is handed back", { payout_id: delivery.id, err });
      // A handler that threw (the database is down, say) gets its message back after a pause.
      later(HAND_BACK_AFTER_MS, { ...delivery, redelivered: true });
    } finally {
      inFlight--;
      workerInFlight.dec();
      if (inFlight === 0) drained?.();
      pump();
    }
  };

  function pump() {
    while (handler && !closed && inFlight < concurrency && waiting.length > 0) {
      const delivery = waiting.shift() as QueueMessage;
      inFlight++;
      workerInFlight.inc();
      void run(delivery, handler);
    }
  }

  const publisher: Publisher = {
    connected: true,
    async publish(messages: PayoutMessage[]) {
      if (closed) throw new Error("the in-process queue is closed");
      for (const message of messages) waiting.push({ ...message, redelivered: false });
      pump();
    },
    async close() {},
  };

  const consumer: Consumer & { readonly scheduled: number } = {
    async start(h) {
      handler = h;
      pump();
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      if (inFlight > 0)
        await new Promise<void>((resolve) => {
          drained = resolve;
        });
    },
    get inFlight() {
      return inFlight;
    },
    /** Retries and hand-backs waiting for their time: with none and nothing in flight, nothing more comes. */
    get scheduled() {
      return timers.size;
    },
  };
  return { publisher, consumer };
}
