// The service's metrics: names, help and buckets (the library is src/lib/prometheus.ts). Every
// thread defines the same ones, so reports line up by name.
import { METRICS_CONTENT_TYPE, Registry } from "./lib/prometheus";

// What a worker thread reports to its supervisor.
export type { MetricsReport } from "./lib/prometheus";

export const metricsResponse = (registry: Registry) => {
  // The whole process's memory, sampled when scraped: threads share it, so only this one sets it.
  processResidentMemory.set(process.memoryUsage.rss());
  return new Response(registry.render(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
};

export const registry = new Registry();

const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// The simulated gateway takes GATEWAY_LATENCY_MS (500 by default); a call may last up to TASK_TIME_LIMIT_MS.
const GATEWAY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export const httpRequestDuration = registry.histogram(
  "http_request_duration_seconds",
  "Time to answer an HTTP request, by method, route pattern (unmatched for unknown paths) and status",
  ["method", "route", "status"],
  HTTP_BUCKETS,
);
export const payoutsCreated = registry.counter(
  "payouts_created_total",
  "Payouts created (idempotent replays excluded)",
);
export const payoutStatusChanges = registry.counter(
  "payout_status_changes_total",
  "Payout status changes, by the status entered",
  ["status"],
);
for (const status of ["PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]) payoutStatusChanges.inc({ status }, 0);
export const gatewayCallDuration = registry.histogram(
  "gateway_call_duration_seconds",
  "Time one payout gateway call took, by outcome (success, failure)",
  ["outcome"],
  GATEWAY_BUCKETS,
);
export const payoutRetries = registry.counter(
  "payout_retries_total",
  "Gateway attempts that failed temporarily and were scheduled again",
);
export const workerInFlight = registry.gauge(
  "worker_in_flight",
  "Payout messages being processed now (at most WORKER_CONCURRENCY per thread)",
);
const processResidentMemory = registry.gauge(
  "process_resident_memory_bytes",
  "Resident memory of this process, all threads included, when scraped",
);

// The simulated receivers of the tests answer at once; a real one may take up to WEBHOOK_TIMEOUT_MS.
const WEBHOOK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
export const webhookAttempts = registry.counter(
  "webhook_deliveries_total",
  "Webhook delivery attempts, by outcome (success, http_error, timeout, network_error, refused_address, unreadable_secret)",
  ["outcome"],
);
export const webhookAttemptDuration = registry.histogram(
  "webhook_delivery_duration_seconds",
  "Time one webhook delivery attempt took, DNS check included, by outcome",
  ["outcome"],
  WEBHOOK_BUCKETS,
);
export const webhookDeliveriesPending = registry.gauge(
  "webhook_deliveries_pending",
  "Webhook deliveries neither succeeded nor failed yet, in the whole database (every delivering process reports the same count: aggregate with max)",
);
export const webhookFanoutPending = registry.gauge(
  "webhook_fanout_pending",
  "Events whose webhook deliveries are not created yet, in the whole database (every delivering process reports the same count: aggregate with max)",
);
