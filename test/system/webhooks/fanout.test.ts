// The fan-out (issue 17, item 2): a create writes one webhook_fanout row per event whatever the
// number of endpoints, and the delivery side expands it into exactly one delivery per endpoint that
// was subscribed when the event happened, across replicas and crashes.
import { expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { fanOut } from "../../../src/webhooks/delivery/fanout";
import { LOCAL_WEBHOOKS, testApi } from "../../kit/api";
import { createPayout, query } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker } from "../processing/harness";

const fixtures = processingFixtures(8);
const api = () => testApi(fixtures.database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 0 } });

/** `count` endpoints subscribed to every type (or `types`), as the api would store them. */
async function addEndpoints(count: number, types = sql`enum_range(NULL::payout_event_type)`) {
  const rows = await query<{ id: string }>(
    fixtures.database,
    sql`INSERT INTO webhook_endpoints (id, url, event_types, secret, created_by, updated_by)
        SELECT gen_random_uuid(), 'http://127.0.0.1:9/hook', ${types}, 'whsec_' || md5(i::text), 'test', 'test'
        FROM generate_series(1, ${count}) AS i RETURNING id`,
  );
  return rows.map((r) => r.id);
}

const counts = async () =>
  (
    await query<{ deliveries: number; pairs: number; fanout: number; events: number }>(
      fixtures.database,
      sql`SELECT (SELECT count(*)::int FROM webhook_deliveries) AS deliveries,
                 (SELECT count(DISTINCT (endpoint_id, event_id))::int FROM webhook_deliveries) AS pairs,
                 (SELECT count(*)::int FROM webhook_fanout) AS fanout,
                 (SELECT count(*)::int FROM payout_events) AS events`,
    )
  )[0] as { deliveries: number; pairs: number; fanout: number; events: number };

/** Runs the fan-out until nothing is left; the deliveries it made. */
async function fanOutAll() {
  let made = 0;
  for (;;) {
    const step = await fanOut(fixtures.database.db);
    made += step.deliveries;
    if (step.events === 0) return made;
  }
}

/** `count` payouts created at once, as a batch of creates makes them: `count` created events. */
const insertPayouts = (count: number) =>
  fixtures.database.db.execute(sql`
    INSERT INTO payouts (id, amount, currency, recipient_details)
    SELECT gen_random_uuid(), 10, 'EUR', 'DE89 3704' FROM generate_series(1, ${count})`);

test("with 500 endpoints a create writes one fan-out row and no delivery; the fan-out makes all 500", async () => {
  const endpoints = await addEndpoints(500);
  const created = await createPayout(api());
  // What the create's transaction left: its event and one row to fan out, not a delivery.
  expect(await counts()).toEqual({ deliveries: 0, pairs: 0, fanout: 1, events: 1 });
  await insertPayouts(20);
  expect(await counts()).toEqual({ deliveries: 0, pairs: 0, fanout: 21, events: 21 });

  expect(await fanOutAll()).toBe(21 * 500);
  expect(await counts()).toEqual({ deliveries: 21 * 500, pairs: 21 * 500, fanout: 0, events: 21 });
  const mine = await query<{ endpoint_id: string; status: string; attempts: number }>(
    fixtures.database,
    sql`SELECT d.endpoint_id, d.status, d.attempts FROM webhook_deliveries d
        JOIN payout_events e ON e.id = d.event_id WHERE e.payout_id = ${created.id}`,
  );
  expect(new Set(mine.map((d) => d.endpoint_id))).toEqual(new Set(endpoints));
  expect(mine.every((d) => d.status === "pending" && d.attempts === 0)).toBe(true);
  // A fan-out run again finds nothing to do.
  expect(await fanOut(fixtures.database.db)).toEqual({ events: 0, deliveries: 0, full: false });
});

test("no enabled endpoint subscribed to the type: the create writes nothing for webhooks", async () => {
  await addEndpoints(3, sql`ARRAY['payout.completed']::payout_event_type[]`);
  const [disabled] = await addEndpoints(1);
  await fixtures.database.db.execute(
    sql`UPDATE webhook_endpoints SET enabled = false, disabled_at = now() WHERE id = ${disabled}`,
  );
  await createPayout(api());
  expect(await counts()).toEqual({ deliveries: 0, pairs: 0, fanout: 0, events: 1 });
});

test("who receives an event: the endpoints subscribed and enabled when it happened, that still exist", async () => {
  const client = api();
  const endpoint = async (body: Record<string, unknown> = {}) =>
    (await client.request("POST", "/api/webhook-endpoints/", { url: "http://127.0.0.1:9/hook", ...body })).body
      .id as string;
  const subscribed = await endpoint();
  const otherType = await endpoint({ event_types: ["payout.completed"] });
  const disabledBefore = await endpoint({ enabled: false });
  const disabledAfter = await endpoint();
  const deletedAfter = await endpoint();
  const disabledAndEnabledBefore = await endpoint();
  await client.request("PATCH", `/api/webhook-endpoints/${disabledAndEnabledBefore}/`, { enabled: false });
  await client.request("PATCH", `/api/webhook-endpoints/${disabledAndEnabledBefore}/`, { enabled: true });

  const payout = await createPayout(client);
  // Between the event and its fan-out (the worker down, say):
  await client.request("PATCH", `/api/webhook-endpoints/${disabledAfter}/`, { enabled: false });
  // disabling again does not move the moment it was disabled
  await client.request("PATCH", `/api/webhook-endpoints/${disabledAfter}/`, { enabled: false });
  await client.request("DELETE", `/api/webhook-endpoints/${deletedAfter}/`);
  const createdAfter = await endpoint();
  await fanOutAll();

  const rows = await query<{ endpoint_id: string; event_type: string; status: string }>(
    fixtures.database,
    sql`SELECT endpoint_id, event_type, status FROM webhook_deliveries`,
  );
  const receivers = rows.map((r) => r.endpoint_id).sort();
  expect(receivers).toEqual([subscribed, disabledAfter, disabledAndEnabledBefore].sort());
  expect(rows.every((r) => r.event_type === "payout.created" && r.status === "pending")).toBe(true);
  for (const absent of [otherType, disabledBefore, deletedAfter, createdAfter]) expect(receivers).not.toContain(absent);

  // The endpoint disabled after the event keeps its delivery, waiting; events after the disable
  // are not its.
  await client.request("PATCH", `/api/payouts/${payout.id}/`, { comment: "changed" });
  await fanOutAll();
  const [later] = await query<{ n: number }>(
    fixtures.database,
    sql`SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = ${disabledAfter}`,
  );
  expect(later?.n).toBe(1);
});

test("an endpoint deleted while the fan-out runs: the fan-out waits for the delete, and makes none for it", async () => {
  const [doomed, kept] = (await addEndpoints(2)) as [string, string];
  await insertPayouts(5);
  const other = postgres(process.env.DATABASE_URL as string, { max: 1, onnotice: () => {} });
  try {
    let fanned: Promise<unknown> | undefined;
    await other.begin(async (tx) => {
      await tx`DELETE FROM webhook_endpoints WHERE id = ${doomed}`;
      await tx`DELETE FROM webhook_deliveries WHERE endpoint_id = ${doomed}`;
      fanned = fanOutAll();
      // The fan-out is waiting on the deleted endpoint's row lock, not done.
      await eventually(async () => {
        const [row] = await tx<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
        return (row?.n ?? 0) > 0;
      });
    });
    await fanned;
  } finally {
    await other.end();
  }
  const rows = await query<{ endpoint_id: string }>(fixtures.database, sql`SELECT endpoint_id FROM webhook_deliveries`);
  expect(rows).toHaveLength(5);
  expect(rows.every((r) => r.endpoint_id === kept)).toBe(true);
});

test("replicas fanning out at once make exactly one delivery per endpoint and event", async () => {
  await addEndpoints(50);
  await insertPayouts(400);
  const made = await Promise.all([fanOutAll(), fanOutAll(), fanOutAll(), fanOutAll()]);
  expect(made.reduce((a, b) => a + b, 0)).toBe(400 * 50);
  // Each replica took a part: the rows were shared, not all taken by one.
  expect(made.filter((n) => n > 0).length).toBeGreaterThan(1);
  expect(await counts()).toEqual({ deliveries: 400 * 50, pairs: 400 * 50, fanout: 0, events: 400 });
});

test("a worker killed with SIGKILL in the middle of a fan-out: the next one completes it, one delivery per endpoint and event", async () => {
  const { broker, database } = fixtures;
  await addEndpoints(500);
  await insertPayouts(100);
  // The payouts stay NEW, unpublished (the relay republishes only after RELAY_REPUBLISH_AFTER_MS),
  // and every endpoint is disabled after the events: they still receive them (enabled when they
  // happened), and no attempt is made, so only the fan-out runs.
  await database.db.execute(sql`DELETE FROM payout_outbox`);
  await database.db.execute(sql`UPDATE webhook_endpoints SET enabled = false, disabled_at = now()`);

  const first = await spawnWorker(broker);
  await eventually(
    async () => {
      const now = await counts();
      return now.deliveries > 0 && now.fanout > 0;
    },
    30_000,
    5,
  );
  first.kill("SIGKILL");
  await first.exited;
  const atKill = await counts();
  // Mid-way: some events fanned out, some not; each one fanned out completely or not at all.
  expect(atKill.fanout).toBeGreaterThan(0);
  expect(atKill.deliveries).toBeGreaterThan(0);
  expect(atKill.deliveries).toBe((100 - atKill.fanout) * 500);
  await eventually(async () => (await broker.depth("payouts")).consumers === 0);

  await spawnWorker(broker);
  await eventually(async () => (await counts()).fanout === 0, 60_000);
  expect(await counts()).toEqual({ deliveries: 100 * 500, pairs: 100 * 500, fanout: 0, events: 100 });
  const perEvent = await query<{ n: number }>(
    database,
    sql`SELECT count(*)::int AS n FROM webhook_deliveries GROUP BY event_id`,
  );
  expect(perEvent.map((r) => r.n)).toEqual(Array(100).fill(500));
}, 120_000);
