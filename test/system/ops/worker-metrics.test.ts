// The worker role's own /metrics on METRICS_PORT: its threads' counts and in-flight payouts, summed;
// and its /health there, which the image's healthcheck asks for this role.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { roleIsHealthy } from "../../../src/http/healthcheck";
import { retryDelays } from "../../../src/payouts/processing/retry-policy";
import { rabbitPublisher } from "../../../src/queue/rabbitmq/publisher";
import { sample, testApi } from "../../kit/api";
import { amqpUrl } from "../../kit/broker";
import { testDatabase } from "../../kit/db";
import { quiet as log } from "../../kit/log";
import { freePort, killSpawned, spawnRole } from "../../kit/processes";
import { eventually } from "../../kit/wait";

const database = testDatabase();
const PROCESSING = { maxAttempts: 5, retryBaseDelayMs: 1000, taskTimeLimitMs: 60_000 };
const publisher = rabbitPublisher({ log }, { url: amqpUrl, retryDelays: retryDelays(PROCESSING) });
let metricsUrl: string;
let metricsPort: number;

beforeAll(async () => {
  const port = freePort();
  metricsPort = port;
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  spawnRole("worker", {
    METRICS_PORT: `${port}`,
    WORKER_THREADS: "2",
    WORKER_CONCURRENCY: "10",
    // Long enough to see the payouts in flight.
    GATEWAY_LATENCY_MS: "1500",
    MAX_ATTEMPTS: `${PROCESSING.maxAttempts}`,
    RETRY_BASE_DELAY_MS: `${PROCESSING.retryBaseDelayMs}`,
  });
  await publisher.ready(10_000);
  await eventually(
    () =>
      fetch(metricsUrl).then(
        (r) => r.ok,
        () => false,
      ),
    20_000,
  );
});

afterAll(async () => {
  await killSpawned();
  await publisher.close();
  await database.close();
}, 30_000);

const scrape = async () => {
  const response = await fetch(metricsUrl);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return response.text();
};

test("the worker's /metrics shows payouts in flight in its threads, then their status changes", async () => {
  const before = await scrape();
  expect(before).toContain("# TYPE worker_in_flight gauge\n");
  expect(sample(before, "worker_in_flight")).toBe(0);

  const { request } = testApi(database);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const created = await request("POST", "/api/payouts/", {
      amount: "3.00",
      currency: "USD",
      recipient_details: "worker metrics",
    });
    ids.push(created.body.id);
  }
  await publisher.publish(ids.map((id) => ({ id })));

  // Claimed, then held for 1.5 s at the gateway, in one thread or both: the sum is what counts.
  const processing = 'payout_status_changes_total{status="PROCESSING"}';
  const during = await eventually(async () => {
    const text = await scrape();
    return sample(text, processing) - sample(before, processing) >= 4 && text;
  });
  expect(sample(during, "worker_in_flight")).toBeGreaterThanOrEqual(4);

  await eventually(async () => {
    const rows = await Promise.all(ids.map((id) => request("GET", `/api/payouts/${id}/`)));
    return rows.every((r) => r.body.status === "COMPLETED");
  });
  const after = await eventually(async () => {
    const text = await scrape();
    return sample(text, "worker_in_flight") === 0 && text;
  });
  const completed = 'payout_status_changes_total{status="COMPLETED"}';
  expect(sample(after, completed) - sample(before, completed)).toBeGreaterThanOrEqual(4);
  const calls = 'gateway_call_duration_seconds_count{outcome="success"}';
  expect(sample(after, calls) - sample(before, calls)).toBeGreaterThanOrEqual(4);
  expect(after).toContain('gateway_call_duration_seconds_bucket{outcome="success",le="2.5"} ');

  // Scraping again does not count again.
  expect(sample(await scrape(), completed)).toBe(sample(after, completed));
}, 60_000);

test("the worker's metrics port answers 404 outside /metrics", async () => {
  const response = await fetch(metricsUrl.replace("/metrics", "/other"));
  expect(response.status).toBe(404);
});

test("the worker's /health is 200 while all WORKER_THREADS threads run", async () => {
  const response = await fetch(metricsUrl.replace("/metrics", "/health"));
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ status: "ok", threads: 2, expected: 2, database: "up" });
});

test("--healthcheck asks the worker's /health on METRICS_PORT, and the api's /health/ready on PORT", async () => {
  const config = { host: "0.0.0.0", port: freePort(), metricsPort };
  expect(await roleIsHealthy("worker", config)).toBe(true);
  // Nothing listens on PORT here: the api check must not pass on the worker's port.
  expect(await roleIsHealthy("api", config)).toBe(false);
  expect(await roleIsHealthy("worker", { ...config, metricsPort: freePort() })).toBe(false);
});
