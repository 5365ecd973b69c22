import type { Logger } from "../../lib/log";
import { deadline } from "../../lib/timers";
import type { PayoutMessage, Publisher } from "../port";
import { type Link, RabbitConnection } from "./connection";
import { declareTopology, QUEUE } from "./topology";

const CONFIRM_TIMEOUT_MS = 10_000;

/**
 * Publishes one persistent message and resolves when the broker confirmed it. A broker that
 * accepts the connection but stops answering must not stall the caller (the relay holds row
 * locks meanwhile): past CONFIRM_TIMEOUT_MS the publish counts as failed and is tried again later;
 * should the broker confirm it after all, the duplicate finds nothing to claim.
 */
export function send({ channel, returned }: Link, queue: string, message: PayoutMessage): Promise<void> {
  const confirmed = new Promise<void>((resolve, reject) => {
    channel.sendToQueue(
      queue,
      Buffer.from(JSON.stringify(message)),
      // mandatory: a message no queue takes comes back (before its confirm) instead of vanishing.
      { persistent: true, mandatory: true, contentType: "application/json", messageId: message.id },
      (err) => {
        if (err) reject(err);
        else if (returned.delete(message.id)) reject(new Error(`no queue took the message for ${queue}`));
        else resolve();
      },
    );
  });
  return deadline(confirmed, CONFIRM_TIMEOUT_MS, () => new Error("the broker did not confirm in time"));
}

/** Publishes payout ids to the durable queue as persistent messages, each confirmed by the broker. */
export function rabbitPublisher(
  { log }: { log: Logger },
  { url, retryDelays }: { url: string; retryDelays: number[] },
): Publisher & { ready(ms: number): Promise<void> } {
  const connection = new RabbitConnection(url, log.child({ component: "publisher" }), ({ channel }) =>
    declareTopology(channel, retryDelays),
  );
  return {
    get connected() {
      return connection.link !== undefined;
    },
    ready: (ms) => connection.ready(ms),
    async publish(messages) {
      const link = connection.link;
      if (!link) throw new Error("the broker is not connected");
      await Promise.all(messages.map((m) => send(link, QUEUE, m)));
    },
    close: () => connection.close(),
  };
}
