// Subscribers are isolated (issue 17, item 6): an endpoint that never answers and one that answers
// 500, each with a backlog of thousands of due deliveries older than anything else, do not delay a
// healthy endpoint's new events: the claim is fair between endpoints and bounds the attempts in
// flight to each one.
import { afterAll, afterEach, beforeEach, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { systemClock } from "../../../src/lib/clock";
import { type DeliveryOptions, startDeliveries } from "../../../src/webhooks/delivery/loop";
import { LOCAL_WEBHOOKS, testApi, testBox } from "../../kit/api";
import { resetDatabase, testDatabase } from "../../kit/db";
import { createPayout, query } from "../../kit/fixtures";
import { quiet } from "../../kit/log";
import { startReceiver } from "../../kit/receiver";
import { eventually } from "../../kit/wait";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 0 } });
const stops: (() => unknown)[] = [];
beforeEach(() => resetDatabase(database));
afterEach(async () => {
  for (let stop = stops.pop(); stop; stop = stops.pop()) await stop();
});

const OPTIONS: DeliveryOptions = {
  timeoutMs: 2000,
  maxAttempts: 8,
  retryBaseDelayMs: 60_000,
  disableAfter: 1000,
  allowPrivateNetworks: true,
  allowHttp: true,
  concurrency: 8,
  perEndpoint: 3,
  pollIntervalMs: 50,
  busyRate: 0,
};
const BACKLOG = 5000;

async function endpoint(url: string) {
  const created = await api.request("POST", "/api/webhook-endpoints/", { url });
  expect(created.status).toBe(201);
  return created.body as { id: string; secret: string };
}

/** `count` due deliveries to the endpoint, of events older than any the test creates. */
async function backlog(endpointId: string, count: number) {
  await database.db.execute(sql`
    WITH events AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT uuid_v7(at), 'payout.created', gen_random_uuid(), NULL, date_trunc('milliseconds', at), '{}'::json
      FROM generate_series(1, ${count}) AS i, LATERAL (SELECT now() - interval '1 hour' + make_interval(secs => i / 1000.0) AS at) AS t
      RETURNING id, created_at)
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, next_attempt_at, created_at)
    SELECT gen_random_uuid(), ${endpointId}, id, 'payout.created', created_at, created_at FROM events`);
}

const untried = async (endpointId: string) =>
  (
    await query<{ n: number }>(
      database,
      sql`SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND attempts = 0`,
    )
  )[0]?.n ?? 0;

test("a healthy endpoint's new events arrive while a silent and a failing endpoint's backlogs of thousands wait", async () => {
  // Never answers: every attempt to it lasts until the timeout.
  let silentNow = 0;
  let silentMax = 0;
  const silent = startReceiver([], async () => {
    silentNow += 1;
    silentMax = Math.max(silentMax, silentNow);
    await Bun.sleep(OPTIONS.timeoutMs + 1000);
    silentNow -= 1;
    return new Response("late");
  });
  const failing = startReceiver([], () => new Response("down", { status: 500 }));
  const healthy = startReceiver([]);
  stops.push(
    () => silent.stop(),
    () => failing.stop(),
    () => healthy.stop(),
  );
  const silentEndpoint = await endpoint(silent.url);
  const failingEndpoint = await endpoint(failing.url);
  await backlog(silentEndpoint.id, BACKLOG);
  await backlog(failingEndpoint.id, BACKLOG);
  healthy.secrets.push((await endpoint(healthy.url)).secret);

  const deliveries = startDeliveries({ db: database.db, box: testBox(), clock: systemClock, log: quiet }, OPTIONS);
  stops.push(() => deliveries.stop());
  // The bad endpoints are busy with their backlogs before the healthy one's events happen.
  await eventually(async () => silentNow === OPTIONS.perEndpoint && failing.received.length > 0);

  const created = [];
  for (let i = 0; i < 30; i += 1) created.push(await createPayout(api));
  // Every new event reaches the healthy endpoint...
  await eventually(async () => healthy.received.length >= 30, 30_000);
  const untriedSilent = await untried(silentEndpoint.id);
  const untriedFailing = await untried(failingEndpoint.id);
  // ...while most of both backlogs, older than those events, has not been tried yet.
  expect(untriedSilent).toBeGreaterThan(BACKLOG / 2);
  expect(untriedFailing).toBeGreaterThan(BACKLOG / 2);
  expect(new Set(healthy.received.map((got) => got.event.payout_id))).toEqual(new Set(created.map((p) => p.id)));
  expect(healthy.received.every((got) => got.verified[0] === true)).toBe(true);
  // The silent receiver never held more than its bound of this process's slots.
  expect(silentMax).toBe(OPTIONS.perEndpoint);

  const latencies = healthy.received
    .map((got) => got.at - Date.parse(got.event.created_at as string))
    .sort((a, b) => a - b);
  console.log(
    `healthy endpoint, ${latencies.length} deliveries beside two backlogs of ${BACKLOG}: latency median ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms; untried backlog then: silent ${untriedSilent}, failing ${untriedFailing}`,
  );
}, 60_000);
