import type { ConfirmChannel } from "amqplib";

export const QUEUE = "payouts";
export const DEAD_LETTER_QUEUE = "payouts.dead";
export const retryQueue = (delayMs: number) => `payouts.retry.${delayMs}ms`;

// A message handed back this many times (a worker crashing on it, say) is dead-lettered instead of
// looping; its payout, if it was PROCESSING, is re-published later by the outbox's relay.
const DELIVERY_LIMIT = 20;

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
