// Deliveries run in the worker role. A worker killed with SIGKILL in the middle of deliveries
// loses none: its leases expire and the next worker delivers what was in flight.
import { expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { LOCAL_WEBHOOKS, testApi } from "../../kit/api";
import { onCleanup } from "../../kit/cleanup";
import { query } from "../../kit/fixtures";
import { startReceiver } from "../../kit/receiver";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker } from "../processing/harness";

const fixtures = processingFixtures();

const WORKER_ENV = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
  WEBHOOK_ALLOW_HTTP: "true",
  WEBHOOK_TIMEOUT_MS: "1000",
  WEBHOOK_RETRY_BASE_DELAY_MS: "100",
  GATEWAY_LATENCY_MS: "0",
};

test("kill -9 of the worker during deliveries, then a new worker: every event is delivered", async () => {
  const { database, broker } = fixtures;
  const api = testApi(database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 0 } });
  // A slow receiver: deliveries are in flight when the worker dies.
  const receiver = startReceiver([], async () => {
    await Bun.sleep(150);
    return new Response("ok");
  });
  onCleanup(async () => receiver.stop());
  const created = await api.request("POST", "/api/webhook-endpoints/", { url: receiver.url });
  receiver.secrets.push(created.body.secret);
  await database.db.execute(sql`
    INSERT INTO payouts (id, amount, currency, recipient_details)
    SELECT gen_random_uuid(), 10, 'EUR', 'DE89 3704' FROM generate_series(1, 40)`);

  const first = await spawnWorker(broker, WORKER_ENV);
  await eventually(async () => receiver.received.length >= 5, 30_000);
  first.kill("SIGKILL");
  await first.exited;
  // RabbitMQ has noticed the dead consumer before the next one is counted.
  await eventually(async () => (await broker.depth("payouts")).consumers === 0);
  await spawnWorker(broker, WORKER_ENV);

  // The relay publishes the payouts, the worker pays them: created, processing and completed
  // events for each, every one of them delivered once at least.
  await eventually(
    async () => {
      const [row] = await query<{ events: number; open: number; succeeded: number }>(
        database,
        sql`SELECT (SELECT count(*)::int FROM payout_events) AS events,
                   (SELECT count(*)::int FROM webhook_fanout)
                   + (SELECT count(*)::int FROM webhook_deliveries WHERE status <> 'succeeded') AS open,
                   (SELECT count(*)::int FROM webhook_deliveries WHERE status = 'succeeded') AS succeeded`,
      );
      // Every event fanned out, and its one delivery succeeded.
      return row?.events === 120 && row.open === 0 && row.succeeded === 120;
    },
    90_000,
    200,
  );
  const events = await query<{ id: string }>(database, sql`SELECT id FROM payout_events`);
  const delivered = new Set(receiver.received.map((got) => got.id));
  expect(events.filter((e) => !delivered.has(e.id))).toEqual([]);
  expect(receiver.received.every((got) => got.verified[0] === true)).toBe(true);
}, 120_000);
