// GET /metrics on the api: Prometheus text, counters that move with requests and payouts (the
// registry underneath: test/unit/metrics.test.ts).
import { afterAll, expect, test } from "bun:test";
import type { PayoutGateway } from "../../../src/gateway/port";
import { TemporaryGatewayError } from "../../../src/gateway/port";
import { systemClock } from "../../../src/lib/clock";
import { createProcessor } from "../../../src/payouts/processing/processor";
import { memoryQueue } from "../../../src/queue/memory";
import { sample, testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { quiet as log } from "../../kit/log";
import { eventually } from "../../kit/wait";

const database = testDatabase();
afterAll(() => database.close());

const body = (amount: string) => ({ amount, currency: "EUR", recipient_details: "DE89 3704 0044 0532 0130 00" });

async function scrape(request: ReturnType<typeof testApi>["request"]): Promise<string> {
  const response = await request("GET", "/metrics");
  expect(response.status).toBe(200);
  return response.text;
}

test("GET /metrics answers in the Prometheus text format with every metric described", async () => {
  const { request } = testApi(database);
  const response = await request("GET", "/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  for (const [name, type] of [
    ["payouts_created_total", "counter"],
    ["payout_status_changes_total", "counter"],
    ["gateway_call_duration_seconds", "histogram"],
    ["payout_retries_total", "counter"],
    ["http_request_duration_seconds", "histogram"],
    ["worker_in_flight", "gauge"],
  ]) {
    expect(response.text).toContain(`# HELP ${name} `);
    expect(response.text).toContain(`# TYPE ${name} ${type}\n`);
  }
  // Every line is a comment or `name{labels} value`.
  for (const line of response.text.trimEnd().split("\n")) {
    expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="[^"]*",?)+\})? -?[\d.e+-]+|\w+(\{.*\})? [+-]Inf)$/);
  }
});

test("http_request_duration_seconds is labelled with the route pattern, never the raw path", async () => {
  const { request } = testApi(database);
  const created = await request("POST", "/api/payouts/", body("5.00"));
  const series = 'http_request_duration_seconds_count{method="GET",route="/api/payouts/:id/",status="200"}';
  const unmatched = 'http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}';
  const before = await scrape(request);

  await request("GET", `/api/payouts/${created.body.id}/`);
  await request("GET", `/api/payouts/${created.body.id}`);
  await request("GET", "/definitely/not/here");
  // The observation is made just after the response is sent.
  const after = await eventually(async () => {
    const text = await scrape(request);
    return sample(text, series) === sample(before, series) + 2 && text;
  }, 2000);

  expect(sample(after, unmatched)).toBe(sample(before, unmatched) + 1);
  expect(after).not.toContain(created.body.id);
  expect(after).not.toContain("/definitely/not/here");
  const labels = 'method="GET",route="/api/payouts/:id/",status="200"';
  expect(after).toContain(`http_request_duration_seconds_bucket{${labels},le="0.005"} `);
  expect(sample(after, `http_request_duration_seconds_bucket{${labels},le="+Inf"}`)).toBe(sample(after, series));
  expect(sample(after, `http_request_duration_seconds_sum{${labels}}`)).toBeGreaterThan(0);
});

test("payouts_created_total counts creations, not idempotent replays; a cancel counts as a status change", async () => {
  const { request } = testApi(database);
  const before = await scrape(request);
  const key = { "idempotency-key": `metrics-${crypto.randomUUID()}` };
  const first = await request("POST", "/api/payouts/", body("7.00"), key);
  const replay = await request("POST", "/api/payouts/", body("7.00"), key);
  expect(replay.headers.get("idempotent-replayed")).toBe("true");
  const cancelled = await request("PATCH", `/api/payouts/${first.body.id}/`, { status: "CANCELLED" });
  expect(cancelled.status).toBe(200);
  const refused = await request("PATCH", `/api/payouts/${first.body.id}/`, { status: "CANCELLED" });
  expect(refused.status).toBe(409);

  const after = await scrape(request);
  expect(sample(after, "payouts_created_total")).toBe(sample(before, "payouts_created_total") + 1);
  const cancels = 'payout_status_changes_total{status="CANCELLED"}';
  expect(sample(after, cancels)).toBe(sample(before, cancels) + 1);
});

test("processing moves the status counters, the gateway histogram, the retry counter and worker_in_flight", async () => {
  // A gateway that holds every call until released, and declines the payouts of 13.00.
  const release = Promise.withResolvers<void>();
  const gateway: PayoutGateway = {
    async pay(request) {
      await release.promise;
      if (request.amount === "13.00") throw new TemporaryGatewayError("declined for the test");
      return { reference: `ref-${request.payoutId}` };
    },
    lookup: async () => undefined,
  };
  const { publisher, consumer } = memoryQueue({ log }, { concurrency: 10 });
  await consumer.start(
    createProcessor(
      { db: database.db, availability: database.availability, gateway, clock: systemClock, log },
      { maxAttempts: 2, retryBaseDelayMs: 10, taskTimeLimitMs: 10_000 },
    ),
  );
  const { request } = testApi(database, { onCreated: (id) => void publisher.publish([{ id }]) });
  try {
    const before = await scrape(request);
    const paid = await request("POST", "/api/payouts/", body("12.00"));
    const declined = await request("POST", "/api/payouts/", body("13.00"));

    // Both are claimed and held at the gateway.
    const processing = 'payout_status_changes_total{status="PROCESSING"}';
    const during = await eventually(async () => {
      const text = await scrape(request);
      return sample(text, processing) === sample(before, processing) + 2 && text;
    });
    expect(sample(during, "worker_in_flight")).toBe(2);
    release.resolve();

    await eventually(async () => {
      const [a, b] = await Promise.all([
        request("GET", `/api/payouts/${paid.body.id}/`),
        request("GET", `/api/payouts/${declined.body.id}/`),
      ]);
      return a.body.status === "COMPLETED" && b.body.status === "FAILED";
    });
    const after = await eventually(async () => {
      const text = await scrape(request);
      return sample(text, "worker_in_flight") === 0 && text;
    });
    const moved = (series: string) => sample(after, series) - sample(before, series);
    expect(moved('payout_status_changes_total{status="COMPLETED"}')).toBe(1);
    expect(moved('payout_status_changes_total{status="FAILED"}')).toBe(1);
    // The declined payout was claimed twice: its first attempt and its retry.
    expect(moved(processing)).toBe(3);
    expect(moved("payout_retries_total")).toBe(1);
    expect(moved('gateway_call_duration_seconds_count{outcome="success"}')).toBe(1);
    expect(moved('gateway_call_duration_seconds_count{outcome="failure"}')).toBe(2);
    expect(after).toContain('gateway_call_duration_seconds_bucket{outcome="success",le="0.5"} ');
  } finally {
    release.resolve();
    await consumer.close();
  }
});
