// The composition root: which adapter plays each port (database, broker, gateway, clock) and how
// they are put together, for main.ts and the worker thread alike. Nothing below it chooses an adapter.

import type { Config } from "../config";
import type { Database } from "../db/client";
import { simulatedGateway } from "../gateway/simulated";
import { type Clock, systemClock } from "../lib/clock";
import type { Logger } from "../lib/log";
import type { OutboxOptions } from "../payouts/processing/outbox";
import { createProcessor } from "../payouts/processing/processor";
import { retryDelays, retryPolicy, stuckAfterMs } from "../payouts/processing/retry-policy";
import type { Consumer, Publisher } from "../queue/port";
import { type RabbitConsumerOptions, rabbitConsumer } from "../queue/rabbitmq/consumer";
import { rabbitPublisher } from "../queue/rabbitmq/publisher";

/** The RabbitMQ consumer that feeds the processor: its prefetch, its retry queues, its drain. */
export const consumerOptions = (config: Config): RabbitConsumerOptions => ({
  concurrency: config.workerConcurrency,
  retryDelays: retryDelays(retryPolicy(config)),
  drainTimeoutMs: config.taskTimeLimitMs,
});

/** The time of day every role decides by: the machine's (tests pass others to what they build). */
export const clock: Clock = systemClock;

export const outboxOptions = (config: Config): OutboxOptions => ({
  intervalMs: config.relayIntervalMs,
  graceMs: 5000,
  republishAfterMs: config.relayRepublishAfterMs,
  stuckAfterMs: stuckAfterMs(retryPolicy(config)),
});

export const brokerPublisher = (config: Config, url: string, log: Logger): Publisher =>
  rabbitPublisher(url, retryDelays(retryPolicy(config)), log);

export const brokerConsumer = (config: Config, url: string, log: Logger): Consumer =>
  rabbitConsumer(url, consumerOptions(config), log);

/**
 * The processing half of a process (a worker thread, or role `all`): the simulated gateway (the
 * only adapter of the gateway port so far) and the processor, fed by `consumer`.
 */
export async function startProcessing(
  config: Config,
  database: Database,
  consumer: Consumer,
  log: Logger,
): Promise<void> {
  const gateway = simulatedGateway(database.db, {
    latencyMs: config.gatewayLatencyMs,
    failureRate: config.gatewayFailureRate,
  });
  await consumer.start(createProcessor(database, gateway, retryPolicy(config), clock, log, config.workerConcurrency));
}
