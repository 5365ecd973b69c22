// Delivery: every subscribed event reaches a real HTTP receiver, signed per Standard Webhooks and
// verified by the standardwebhooks library, with retries, failure, disabling and rotation as the
// contract says. The delivery loop runs in this process on the run's PostgreSQL.
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type SQL, sql } from "drizzle-orm";
import { parseKey } from "../../../src/keys/secret";
import { type Clock, systemClock } from "../../../src/lib/clock";
import { createLogger } from "../../../src/lib/log";
import { registry } from "../../../src/metrics";
import { PLAIN_HTTP } from "../../../src/webhooks/addresses";
import { type DeliveryOptions, startDeliveries } from "../../../src/webhooks/delivery/loop";
import { type SecretBox, secretBox } from "../../../src/webhooks/secret-box";
import { LOCAL_WEBHOOKS, testApi, testBox } from "../../kit/api";
import { resetDatabase, testDatabase } from "../../kit/db";
import { createPayout, query } from "../../kit/fixtures";
import { type Answer, startReceiver } from "../../kit/receiver";
import { eventually } from "../../kit/wait";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 86_400_000 } });

const run = async (statement: SQL) => {
  await database.db.execute(statement);
};

const stops: (() => unknown)[] = [];
beforeEach(() => resetDatabase(database));
afterEach(async () => {
  for (let stop = stops.pop(); stop; stop = stops.pop()) await stop();
});

type Line = Record<string, unknown>;
const OPTIONS: DeliveryOptions = {
  timeoutMs: 2000,
  maxAttempts: 8,
  retryBaseDelayMs: 100,
  disableAfter: 10,
  allowPrivateNetworks: true,
  allowHttp: true,
  concurrency: 8,
  perEndpoint: 8,
  pollIntervalMs: 20,
  busyRate: 0,
};

/** The delivery loop, its log lines parsed and timed. */
function deliver(
  options: Partial<DeliveryOptions> = {},
  clock: Clock = systemClock,
  payoutsInFlight = () => 0,
  box: SecretBox = testBox(),
) {
  const lines: Line[] = [];
  const raw: string[] = [];
  const log = createLogger("debug", "json", {}, (line) => {
    raw.push(line);
    lines.push(JSON.parse(line));
  });
  const deliveries = startDeliveries({ db: database.db, box, clock, log, payoutsInFlight }, { ...OPTIONS, ...options });
  stops.push(() => deliveries.stop());
  return { lines, raw, attempts: () => lines.filter((l) => l.msg === "webhook attempt") };
}

function receiver(answer?: Answer) {
  const r = startReceiver([], answer);
  stops.push(() => r.stop());
  return r;
}

async function endpoint(url: string, body: Record<string, unknown> = {}) {
  const created = await api.request("POST", "/api/webhook-endpoints/", { url, ...body });
  expect(created.status).toBe(201);
  return created.body as { id: string; secret: string };
}

async function deliveriesOf(endpointId: string) {
  const response = await api.request("GET", `/api/webhook-endpoints/${endpointId}/deliveries/?limit=200`);
  expect(response.status).toBe(200);
  return response.body.results as Record<string, unknown>[];
}

async function history(payoutId: string) {
  return (await api.request("GET", `/api/payouts/${payoutId}/events/`)).body.results as { id: string }[];
}

describe("every event of every path arrives, signed, equal to the history", () => {
  test("created, processing, completed; updated, cancelled, deleted; processing, failed", async () => {
    const r = receiver();
    const e = await endpoint(r.url);
    r.secrets.push(e.secret);
    const a = (await createPayout(api)).id;
    await run(sql`UPDATE payouts SET status = 'PROCESSING', attempts = 1 WHERE id = ${a}`);
    await run(sql`UPDATE payouts SET status = 'COMPLETED', processed_at = now() WHERE id = ${a}`);
    const b = (await createPayout(api)).id;
    await api.request("PATCH", `/api/payouts/${b}/`, { comment: "edited" });
    await api.request("PATCH", `/api/payouts/${b}/`, { status: "CANCELLED" });
    await api.request("DELETE", `/api/payouts/${b}/`);
    const c = (await createPayout(api)).id;
    await run(sql`UPDATE payouts SET status = 'PROCESSING', attempts = 1 WHERE id = ${c}`);
    await run(
      sql`UPDATE payouts SET status = 'FAILED', failure_reason = 'gateway refused', processed_at = now() WHERE id = ${c}`,
    );
    const loop = deliver();

    // Every delivery done: the loop has nothing left to send, so nothing more can arrive.
    await eventually(async () => {
      const rows = await deliveriesOf(e.id);
      return rows.length === 10 && rows.every((d) => d.status === "succeeded");
    });
    expect(r.received).toHaveLength(10);
    expect(r.received.every((got) => got.verified[0] === true)).toBe(true);
    expect(r.received.every((got) => got.id === got.event.id)).toBe(true);
    const types = (id: string) =>
      r.received
        .filter((got) => got.event.payout_id === id)
        .sort((x, y) => (x.id < y.id ? -1 : 1))
        .map((got) => got.event.type);
    expect(types(a)).toEqual(["payout.created", "payout.processing", "payout.completed"]);
    expect(types(b)).toEqual(["payout.created", "payout.updated", "payout.cancelled", "payout.deleted"]);
    expect(types(c)).toEqual(["payout.created", "payout.processing", "payout.failed"]);
    // Each body is the event exactly as the history endpoint shows it.
    for (const id of [a, b, c]) {
      for (const event of await history(id)) {
        expect(r.received.find((got) => got.id === event.id)?.body).toBe(JSON.stringify(event));
      }
    }
    const deliveries = await deliveriesOf(e.id);
    expect(deliveries).toHaveLength(10);
    expect(deliveries.every((d) => d.status === "succeeded" && d.attempts === 1)).toBe(true);
    expect(deliveries.every((d) => d.last_response_status === 200 && d.next_attempt_at === null)).toBe(true);

    // One log line per attempt, with the ids; never the secret or the body.
    const attempts = loop.attempts();
    expect(attempts).toHaveLength(10);
    for (const line of attempts) {
      expect(line).toMatchObject({
        event_id: expect.any(String),
        endpoint_id: e.id,
        delivery_id: expect.any(String),
        outcome: "success",
      });
    }
    const logged = loop.raw.join("");
    expect(logged).not.toContain(e.secret);
    expect(logged).not.toContain(e.secret.slice(6));
    expect(logged).not.toContain("40817810099910004312");
    const metrics = registry.render();
    expect(metrics).not.toContain(e.secret.slice(6));
    expect(metrics).toMatch(/webhook_deliveries_total\{outcome="success"\} \d+/);
    expect(metrics).toMatch(/webhook_delivery_duration_seconds_count\{outcome="success"\} \d+/);
  });

  test("an endpoint gets only the event types it subscribed to", async () => {
    const all = receiver();
    const some = receiver();
    const allEndpoint = await endpoint(all.url);
    const someEndpoint = await endpoint(some.url, { event_types: ["payout.completed"] });
    all.secrets.push(allEndpoint.secret);
    some.secrets.push(someEndpoint.secret);
    const id = (await createPayout(api)).id;
    await run(sql`UPDATE payouts SET status = 'PROCESSING', attempts = 1 WHERE id = ${id}`);
    await run(sql`UPDATE payouts SET status = 'COMPLETED', processed_at = now() WHERE id = ${id}`);
    deliver();
    // Every delivery of both done: nothing is left for the loop to send to either.
    const done = async (id: string, count: number) => {
      const rows = await deliveriesOf(id);
      return rows.length === count && rows.every((d) => d.status === "succeeded");
    };
    await eventually(async () => (await done(allEndpoint.id, 3)) && (await done(someEndpoint.id, 1)));
    expect(some.received.map((got) => [got.event.type, got.verified[0]])).toEqual([["payout.completed", true]]);
  });

  test("a disabled or deleted endpoint gets nothing new, and one created later nothing earlier", async () => {
    const disabled = receiver();
    const deleted = receiver();
    const live = receiver();
    const d = await endpoint(disabled.url);
    const x = await endpoint(deleted.url);
    await createPayout(api);
    await api.request("PATCH", `/api/webhook-endpoints/${d.id}/`, { enabled: false });
    await api.request("DELETE", `/api/webhook-endpoints/${x.id}/`);
    const late = receiver();
    await endpoint(late.url);
    live.secrets.push((await endpoint(live.url)).secret);
    const after = (await createPayout(api)).id;
    deliver();
    await eventually(async () => live.received.length >= 1 && late.received.length >= 1);
    // A later event, delivered: the loop's passes that sent it also saw the disabled endpoint's
    // older pending delivery, and whatever was owed to the deleted one.
    const later = (await createPayout(api)).id;
    await eventually(async () => live.received.length >= 2 && late.received.length >= 2);
    expect(live.received.map((got) => got.event.payout_id)).toEqual([after, later]);
    expect(late.received.map((got) => got.event.payout_id)).toEqual([after, later]);
    expect(deleted.received).toEqual([]);
    // The disabled endpoint's delivery of the early event waits; nothing new was even recorded.
    expect(disabled.received).toEqual([]);
    expect((await deliveriesOf(d.id)).map((row) => [row.status, row.attempts])).toEqual([["pending", 0]]);
  });
});

describe("retries, failure, disabling", () => {
  test("500, then a timeout, then connection refused, then back: it arrives, after the configured delays", async () => {
    const r = receiver(async (_, n) => {
      if (n === 1) return new Response("down", { status: 500 });
      if (n === 2) await Bun.sleep(1500);
      return new Response("ok");
    });
    r.secrets.push((await endpoint(r.url)).secret);
    const port = r.port;
    await createPayout(api);
    const loop = deliver({ timeoutMs: 500, retryBaseDelayMs: 200 });
    // Down once the second attempt has timed out: the third finds the port closed.
    await eventually(async () => loop.attempts().length >= 2, 15_000, 5);
    r.stop();
    await eventually(async () => loop.attempts().length >= 3);
    r.start(port);
    await eventually(async () => loop.attempts().some((l) => l.outcome === "success"));

    const attempts = loop.attempts();
    expect(attempts.map((l) => l.outcome)).toEqual(["http_error", "timeout", "network_error", "success"]);
    expect(attempts.map((l) => l.attempt)).toEqual([1, 2, 3, 4]);
    // An attempt starts no sooner than its delay (200, 400, 800 ms) after the previous one ended,
    // and each one that reached the receiver ended after it arrived there. (2 ms: timestamps are
    // stored in whole milliseconds.)
    const [first, second, last] = r.received.map((got) => got.at) as [number, number, number];
    expect(second - first).toBeGreaterThanOrEqual(200 - 2);
    expect(last - second).toBeGreaterThanOrEqual(400 + 800 - 2);
    expect(r.received.slice(-1)[0]?.verified).toEqual([true]);
  });

  test("failed after the last attempt; the endpoint disabled after WEBHOOK_DISABLE_AFTER failed deliveries; retry", async () => {
    let status = 500;
    const r = receiver(() => new Response("", { status }));
    const e = await endpoint(r.url);
    r.secrets.push(e.secret);
    await createPayout(api);
    await createPayout(api);
    deliver({ maxAttempts: 2, retryBaseDelayMs: 50, disableAfter: 2 });
    await eventually(async () => (await deliveriesOf(e.id)).filter((d) => d.status === "failed").length === 2);
    const failed = await deliveriesOf(e.id);
    expect(failed.map((d) => [d.status, d.attempts, d.last_response_status, d.last_error, d.next_attempt_at])).toEqual([
      ["failed", 2, 500, "HTTP 500", null],
      ["failed", 2, 500, "HTTP 500", null],
    ]);
    const read = await api.request("GET", `/api/webhook-endpoints/${e.id}/`);
    expect(read.body).toMatchObject({
      enabled: false,
      disabled_reason: "2 deliveries in a row failed; the last: HTTP 500",
      // The service disabled it, not the key that made it.
      created_by: parseKey((await api.key()) as string)?.id,
      updated_by: "system",
    });
    expect(r.received).toHaveLength(4);

    // Disabled: a new event records no delivery. Enabled again, a retry of a failed one goes out.
    await createPayout(api);
    expect(await deliveriesOf(e.id)).toHaveLength(2);
    status = 204;
    await api.request("PATCH", `/api/webhook-endpoints/${e.id}/`, { enabled: true });
    const retried = await api.request("POST", `/api/webhook-endpoints/${e.id}/deliveries/${failed[0]?.id}/retry/`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ id: failed[0]?.id, status: "pending", attempts: 2 });
    await eventually(async () => (await deliveriesOf(e.id)).some((d) => d.status === "succeeded"));
    expect((await deliveriesOf(e.id)).find((d) => d.id === failed[0]?.id)).toMatchObject({
      status: "succeeded",
      attempts: 3,
      last_response_status: 204,
    });
  });

  test("an endpoint deleted while an attempt is on the wire: the attempt's outcome is not written", async () => {
    const r = receiver(async () => {
      await Bun.sleep(300);
      return new Response("ok");
    });
    const e = await endpoint(r.url);
    await createPayout(api);
    const loop = deliver();
    await eventually(async () => r.received.length >= 1, 15_000, 5);
    expect((await api.request("DELETE", `/api/webhook-endpoints/${e.id}/`)).status).toBe(204);
    await eventually(async () => loop.attempts().length >= 1);
    expect(loop.attempts().map((l) => [l.outcome, l.delivery])).toEqual([["success", "superseded"]]);
    const [row] = await query<{ n: number }>(database, sql`SELECT count(*)::int AS n FROM webhook_deliveries`);
    expect(row?.n).toBe(0);
  });
});

describe("rotation and addresses", () => {
  test("during the overlap, receivers knowing only the old or only the new secret both verify", async () => {
    const r = receiver();
    const e = await endpoint(r.url);
    const rotated = await api.request("POST", `/api/webhook-endpoints/${e.id}/rotate-secret/`);
    r.secrets.push(e.secret, rotated.body.secret);
    await createPayout(api);
    deliver();
    await eventually(async () => r.received.length >= 1);
    expect(r.received[0]?.verified).toEqual([true, true]);
  });

  test("webhook-timestamp is the delivery loop's clock, in seconds; a receiver refuses one 10 minutes old", async () => {
    const timestamps: (string | null)[] = [];
    const r = receiver((request) => {
      timestamps.push(request.headers.get("webhook-timestamp"));
      return new Response("ok");
    });
    const e = await endpoint(r.url);
    r.secrets.push(e.secret);
    await createPayout(api);
    const tenMinutesAgo = Date.now() - 600_000;
    deliver({}, { now: () => tenMinutesAgo });
    await eventually(async () => r.received.length >= 1);
    expect(timestamps[0]).toBe(String(Math.floor(tenMinutesAgo / 1000)));
    // standardwebhooks allows 5 minutes either way: the signature is checked against this time.
    expect(r.received[0]?.verified).toEqual([false]);
  });

  test("after the overlap, only the new secret verifies", async () => {
    const noOverlap = testApi(database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 0 } });
    const r = receiver();
    const e = await endpoint(r.url);
    const rotated = await noOverlap.request("POST", `/api/webhook-endpoints/${e.id}/rotate-secret/`);
    r.secrets.push(e.secret, rotated.body.secret);
    await createPayout(api);
    deliver();
    await eventually(async () => r.received.length >= 1);
    expect(r.received[0]?.verified).toEqual([false, true]);
  });

  test("at delivery time a private address is refused again, unless allowed", async () => {
    const r = receiver();
    const e = await endpoint(r.url);
    await createPayout(api);
    const loop = deliver({ allowPrivateNetworks: false, maxAttempts: 1 });
    await eventually(async () => (await deliveriesOf(e.id))[0]?.status === "failed");
    expect((await deliveriesOf(e.id))[0]?.last_error).toMatch(/^refused address: the url must not point to a loopback/);
    expect(loop.attempts().map((l) => l.outcome)).toEqual(["refused_address"]);
    expect(r.received).toEqual([]);
  });

  test("at delivery time plain http is refused again, unless allowed: an endpoint stored while it was", async () => {
    const r = receiver();
    const e = await endpoint(r.url);
    expect(r.url).toStartWith("http://");
    await createPayout(api);
    const loop = deliver({ allowHttp: false, maxAttempts: 1 });
    await eventually(async () => (await deliveriesOf(e.id))[0]?.status === "failed");
    expect((await deliveriesOf(e.id))[0]?.last_error).toBe(`refused address: the url ${PLAIN_HTTP}`);
    expect(loop.attempts().map((l) => l.outcome)).toEqual(["refused_address"]);
    expect(r.received).toEqual([]);
  });

  test("a secret sealed with a key the process does not hold is a failed attempt naming the key id; nothing is sent unsigned", async () => {
    const r = receiver();
    const e = await endpoint(r.url);
    await createPayout(api);
    const other = secretBox([{ id: "other", key: Buffer.alloc(32, 9) }]);
    const loop = deliver({ maxAttempts: 1 }, systemClock, () => 0, other);
    await eventually(async () => (await deliveriesOf(e.id))[0]?.status === "failed");
    expect((await deliveriesOf(e.id))[0]?.last_error).toBe(
      'the signing secret is sealed with key id "test", not in WEBHOOK_SECRET_KEYS',
    );
    expect(loop.attempts().map((l) => l.outcome)).toEqual(["unreadable_secret"]);
    expect(r.received).toEqual([]);
    // Nor is any secret in a log line of the loop, at debug level.
    expect(loop.raw.join("\n")).not.toContain(e.secret);
    expect(loop.raw.join("\n")).not.toContain(e.secret.slice("whsec_".length));
  });

  test("the pending gauges count deliveries not yet done and events not yet fanned out", async () => {
    const r = receiver();
    const e = await endpoint(r.url);
    await createPayout(api);
    // Disabled, the endpoint's delivery stays pending.
    await api.request("PATCH", `/api/webhook-endpoints/${e.id}/`, { enabled: false });
    deliver();
    // The event is fanned out to the endpoint (enabled when it happened), then counted.
    await eventually(async () => {
      const [row] = await query<{ n: number }>(
        database,
        sql`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`,
      );
      return row?.n === 1;
    });
    await eventually(async () => {
      const metrics = registry.render();
      return /\nwebhook_deliveries_pending 1\n/.test(metrics) && /\nwebhook_fanout_pending 0\n/.test(metrics);
    });
  });
});

/** A receiver subscribed to every event, and `count` events at once, as a burst of creates makes them. */
async function burst(count: number) {
  const r = receiver();
  await endpoint(r.url);
  await run(sql`
    INSERT INTO payouts (id, amount, currency, recipient_details)
    SELECT gen_random_uuid(), 1, 'EUR', 'DE89 3704' FROM generate_series(1, ${count})`);
  return r;
}

test("a backlog is sent as fast as the slots free up, not a slotful per poll interval", async () => {
  const r = await burst(300);
  // 8 slots and a poll every 10 s: waiting out the interval with the slots empty would take minutes.
  const { attempts } = deliver({ concurrency: 8, pollIntervalMs: 10_000 });
  await eventually(async () => attempts().length === 300, 15_000);
  expect(new Set(r.received.map((x) => x.id)).size).toBe(300);
  const [left] = await query<{ n: number }>(
    database,
    sql`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status <> 'succeeded'`,
  );
  expect(left?.n).toBe(0);
}, 30_000);

test("while payouts are in flight, deliveries yield: at most WEBHOOK_BUSY_RATE a second; then full speed again", async () => {
  const r = await burst(200);
  let payoutsInFlight = 5;
  const { attempts } = deliver(
    { concurrency: 32, pollIntervalMs: 10_000, busyRate: 20 },
    systemClock,
    () => payoutsInFlight,
  );
  // 20 a second, in steps of 2 every 100 ms: the first 20 arrive over about 900 ms, never a
  // slotful (32) at once.
  await eventually(async () => r.received.length >= 20, 10_000);
  const arrivals = r.received.map((x) => x.at).sort((x, y) => x - y);
  expect((arrivals[19] as number) - (arrivals[0] as number)).toBeGreaterThanOrEqual(700);
  payoutsInFlight = 0;
  await eventually(async () => attempts().length === 200, 10_000);
  expect(new Set(r.received.map((x) => x.id)).size).toBe(200);
}, 30_000);
