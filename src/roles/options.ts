// Configuration turned into each part's options: the only place that reads Config for them, so a
// part below roles/ states what it needs as a type of its own and never learns the variable names.

import type { Config } from "../config";
import type { SimulatedGatewayOptions } from "../gateway/simulated";
import type { KeyServiceOptions } from "../keys/service";
import type { KeyPurgeOptions } from "../payouts/key-retention";
import type { OutboxOptions } from "../payouts/processing/outbox";
import { type RetryPolicy, retryDelays, stuckAfterMs } from "../payouts/processing/retry-policy";
import type { RabbitConsumerOptions } from "../queue/rabbitmq/consumer";
import type { DeliveryOptions } from "../webhooks/delivery/loop";
import type { WebhookSettings } from "../webhooks/service";

export const retryPolicy = ({ maxAttempts, retryBaseDelayMs, taskTimeLimitMs }: Config): RetryPolicy => ({
  maxAttempts,
  retryBaseDelayMs,
  taskTimeLimitMs,
});

/** The RabbitMQ consumer that feeds the processor: its prefetch, its retry queues, its drain. */
export const consumerOptions = (config: Config, url: string): RabbitConsumerOptions => ({
  url,
  concurrency: config.workerConcurrency,
  retryDelays: retryDelays(retryPolicy(config)),
  drainTimeoutMs: config.taskTimeLimitMs,
});

export const outboxOptions = (config: Config): OutboxOptions => ({
  intervalMs: config.relayIntervalMs,
  graceMs: 5000,
  republishAfterMs: config.relayRepublishAfterMs,
  stuckAfterMs: stuckAfterMs(retryPolicy(config)),
});

// A round deletes batch after batch until none is left; small batches keep each DELETE's locks short.
export const keyPurgeOptions = (config: Config): KeyPurgeOptions => ({
  ttlMs: config.idempotencyKeyTtlMs,
  intervalMs: 60_000,
  batchSize: 500,
});

export const gatewayOptions = (config: Config): SimulatedGatewayOptions => ({
  latencyMs: config.gatewayLatencyMs,
  failureRate: config.gatewayFailureRate,
});

export const webhookSettings = (config: Config): WebhookSettings => ({
  allowPrivateNetworks: config.webhookAllowPrivateNetworks,
  allowHttp: config.webhookAllowHttp,
  secretOverlapMs: config.webhookSecretOverlapMs,
});

export const deliveryOptions = (config: Config): DeliveryOptions => ({
  timeoutMs: config.webhookTimeoutMs,
  maxAttempts: config.webhookMaxAttempts,
  retryBaseDelayMs: config.webhookRetryBaseDelayMs,
  disableAfter: config.webhookDisableAfter,
  allowPrivateNetworks: config.webhookAllowPrivateNetworks,
  allowHttp: config.webhookAllowHttp,
  concurrency: 32,
  perEndpoint: config.webhookEndpointConcurrency,
  pollIntervalMs: 250,
  busyRate: config.webhookBusyRate,
});

/** The api's key checks: verified keys cached for API_KEY_CACHE_TTL_MS, uses written every 30 s. */
export const keyServiceOptions = (config: Config): KeyServiceOptions => ({
  cacheTtlMs: config.apiKeyCacheTtlMs,
  lastUsedFlushMs: 30_000,
});
