import { TemporaryGatewayError } from "../../gateway/port";
import { retryDelayMs } from "../../lib/backoff";

/**
 * When a payout is tried again and when it is given up: every rule of it in one place, read by the
 * processor (attempts, backoff), the queues (retry queues, hand-backs) and the relay (when a
 * PROCESSING payout counts as lost). Its values are MAX_ATTEMPTS, RETRY_BASE_DELAY_MS and
 * TASK_TIME_LIMIT_MS (src/roles/options.ts).
 */
export type RetryPolicy = { maxAttempts: number; retryBaseDelayMs: number; taskTimeLimitMs: number };

// The backoff stops growing here. Each delay is a retry queue's TTL, and RabbitMQ refuses a TTL of
// years: uncapped, a MAX_ATTEMPTS of a few dozen would fail the topology on every connect.
const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * Every retry delay a payout can wait, for the broker's retry queues; never empty, since a message
 * whose handler failed waits out the first delay too, even with MAX_ATTEMPTS=1.
 */
export const retryDelays = (policy: RetryPolicy) =>
  Array.from({ length: Math.max(1, policy.maxAttempts - 1) }, (_, i) =>
    retryDelayMs(policy.retryBaseDelayMs, i + 1, MAX_RETRY_DELAY_MS),
  );

/**
 * How long a PROCESSING payout may go without a claim or a publish before the relay counts its
 * message as lost: longer than a wait for a call slot and a gateway call (each at most
 * TASK_TIME_LIMIT_MS: a claimed payout waits for one of the calls ahead of it to end) plus the
 * longest retry wait, so a live holder is never taken over.
 */
export const stuckAfterMs = (policy: RetryPolicy) =>
  2 * policy.taskTimeLimitMs + Math.max(0, ...retryDelays(policy)) + 60_000;

/** The delay before the attempt after `attempt`, or undefined when that was the last one. */
export const nextAttemptAfterMs = (policy: RetryPolicy, attempt: number): number | undefined =>
  attempt < policy.maxAttempts ? retryDelayMs(policy.retryBaseDelayMs, attempt, MAX_RETRY_DELAY_MS) : undefined;

/** A gateway call that may succeed if tried again. */
export type TemporaryFailure = { temporary: true; reason: string };

/**
 * What counts as temporary: the gateway said so, or it gave no answer within TASK_TIME_LIMIT_MS.
 * Anything else thrown is not a gateway's answer but a fault of ours (undefined).
 */
export function asTemporaryFailure(
  error: unknown,
  signal: AbortSignal,
  policy: RetryPolicy,
): TemporaryFailure | undefined {
  if (error instanceof TemporaryGatewayError) return { temporary: true, reason: error.message };
  if (signal.aborted) return { temporary: true, reason: `no answer within ${policy.taskTimeLimitMs} ms` };
  return undefined;
}
