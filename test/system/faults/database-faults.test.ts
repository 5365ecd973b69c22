// Money safety under database faults, as an adversary plays them: the api and a worker reach
// PostgreSQL through a proxy that refuses, resets or stalls every connection while clients create
// payouts without an Idempotency-Key, each request carrying a marker of its own.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { sql } from "drizzle-orm";
import { loadConfig } from "../../../src/config";
import { resultRows } from "../../../src/db/client";
import { createAnswerBoundMs } from "../../../src/payouts/create";
import { type Broker, openBroker } from "../../kit/broker";
import { databaseUrl, resetDatabase, testDatabase } from "../../kit/db";
import { freePort, spawnRole, stopEverything, withKey } from "../../kit/processes";
import { startTcpProxy, type TcpProxy } from "../../kit/proxy";
import { eventually } from "../../kit/wait";
import { spawnWorker } from "../processing/harness";

// The contract's bound (src/payouts/service.ts): the create's deadline, its settle time and one
// lookup, and the scheduling of a loaded two-core machine.
const ANSWER_BOUND_MS = createAnswerBoundMs(loadConfig({}).createDeadlineMs);
const CLIENTS = 16;

type Outcome = { marker: string; status: number; ms: number; at: number; id?: string; code?: string };

const database = testDatabase(4);
let broker: Broker;
let proxy: TcpProxy;
let base: string;
let api: Subprocess;
let worker: Subprocess;

beforeAll(async () => {
  broker = await openBroker();
});
// Stopping waits for children's exits and for pools to close (up to 5 s each): more than a hook's
// default 5 s.
afterEach(async () => {
  await stopEverything();
  proxy?.stop();
}, 30_000);
afterAll(async () => {
  await broker.close();
  await database.close();
}, 30_000);

async function startService() {
  await broker.purge();
  await resetDatabase(database);
  const target = new URL(databaseUrl);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const proxied = new URL(target);
  proxied.hostname = "127.0.0.1";
  proxied.port = String(proxy.port);
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: proxied.toString(),
    HOST: "127.0.0.1",
    PORT: String(port),
    GATEWAY_LATENCY_MS: "20",
    RETRY_BASE_DELAY_MS: "200",
    RELAY_INTERVAL_MS: "200",
  };
  api = spawnRole("api", env);
  worker = await spawnWorker(broker, { ...env, WORKER_THREADS: "1", PORT: "0" });
  await eventually(async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200);
}

/** CLIENTS clients creating payouts back to back until `stop()`; every answer is recorded. */
function startClients() {
  const outcomes: Outcome[] = [];
  let running = true;
  const client = async (n: number) => {
    for (let i = 0; running; i++) {
      const marker = `marker-${n}-${i}`;
      const started = performance.now();
      const response = await fetch(`${base}/api/payouts/`, {
        method: "POST",
        headers: await withKey({ "content-type": "application/json" }),
        body: JSON.stringify({ amount: "10.00", currency: "EUR", recipient_details: "DE89 3704", comment: marker }),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      const ms = performance.now() - started;
      if (!response) {
        outcomes.push({ marker, status: 0, ms, at: performance.now() });
        continue;
      }
      const body = (await response.json().catch(() => ({}))) as { id?: string; code?: string; payout_id?: string };
      outcomes.push({
        marker,
        status: response.status,
        ms,
        at: performance.now(),
        id: body.id ?? body.payout_id,
        code: body.code,
      });
      // A refused request is retried, as a client following the 503's advice would.
      if (response.status === 503) await Bun.sleep(20);
    }
  };
  const all = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
  return {
    outcomes,
    async stop() {
      running = false;
      await all;
      return outcomes;
    },
  };
}

/** Runs load, applies `fault` for `faultMs` in its middle, and checks every money-safety rule after. */
async function underFault(fault: () => void, faultMs: number) {
  await startService();
  const clients = startClients();
  await Bun.sleep(1000);
  fault();
  await Bun.sleep(faultMs);
  proxy.heal();
  const healed = performance.now();
  await Bun.sleep(2000);
  const outcomes = await clients.stop();

  // Nothing crashed.
  expect(api.exitCode).toBeNull();
  expect(worker.exitCode).toBeNull();

  // Every request got an answer, within the bound, whatever the fault.
  expect(outcomes.filter((o) => o.status === 0)).toEqual([]);
  expect(outcomes.filter((o) => o.ms > ANSWER_BOUND_MS)).toEqual([]);
  expect(outcomes.every((o) => [201, 503, 504].includes(o.status))).toBe(true);

  // Everything left NEW or PROCESSING completes once the database is back.
  await eventually(async () => {
    const [row] = resultRows<{ open: number }>(
      await database.db.execute(sql`SELECT count(*)::int AS open FROM payouts WHERE status IN ('NEW', 'PROCESSING')`),
    );
    return row?.open === 0;
  }, 60_000);

  const rows = resultRows<{ id: string; comment: string; status: string; payments: number }>(
    await database.db.execute(sql`
      SELECT p.id, p.comment, p.status::text AS status,
             (SELECT count(*)::int FROM simulated_gateway_payments g WHERE g.payout_id = p.id) AS payments
      FROM payouts p`),
  );
  const byMarker = new Map<string, typeof rows>();
  for (const row of rows) byMarker.set(row.comment, [...(byMarker.get(row.comment) ?? []), row]);

  // One request, one payout: no marker has two, each paid at most once and completed.
  expect([...byMarker.values()].filter((same) => same.length > 1)).toEqual([]);
  expect(rows.filter((r) => r.payments !== 1 || r.status !== "COMPLETED")).toEqual([]);
  // Every 201 is there, under its own id; every 503 left nothing behind; a 504 either stored its
  // payout under the id it named, or nothing.
  for (const o of outcomes) {
    const stored = byMarker.get(o.marker) ?? [];
    if (o.status === 201) expect(stored.map((r) => r.id)).toEqual([o.id as string]);
    if (o.status === 503) expect(stored).toEqual([]);
    if (o.status === 504) expect(stored.every((r) => r.id === o.id)).toBe(true);
  }
  // The fault was felt, and service came back: creates succeed again within 5 s of healing.
  expect(outcomes.some((o) => o.status !== 201)).toBe(true);
  expect(outcomes.filter((o) => o.status !== 201 && o.at > healed + 5000)).toEqual([]);
  return outcomes;
}

describe("under database faults, one request is one payout and nothing crashes", () => {
  test(
    "PostgreSQL refuses every connection for 3 s",
    async () => {
      await underFault(() => proxy.refuse(), 3000);
    },
    { timeout: 120_000 },
  );

  test(
    "every connection to PostgreSQL is reset, three times in a row",
    async () => {
      await underFault(() => {
        proxy.resetAll();
        setTimeout(() => proxy.resetAll(), 300);
        setTimeout(() => proxy.resetAll(), 600);
      }, 1000);
    },
    { timeout: 120_000 },
  );

  test(
    "the network to PostgreSQL stalls for 4 s with every socket open",
    async () => {
      await underFault(() => proxy.stall(), 4000);
    },
    { timeout: 120_000 },
  );
});
