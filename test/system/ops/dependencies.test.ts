// Dependencies that are not up yet: migrate waits for PostgreSQL (MIGRATE_WAIT_MS) and says so once
// per attempt; api and worker start without PostgreSQL and RabbitMQ, report not ready, and serve
// once both come up (through a proxy the test starts late).
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { migrationsFolder } from "../../../src/db/migrate";
import { amqpUrl } from "../../kit/broker";
import { databaseUrl } from "../../kit/db";
import { createAndAwaitCompleted, freePort, killSpawned, runMain, spawnRole, startMain } from "../../kit/processes";
import { startTcpProxy } from "../../kit/proxy";
import { eventually } from "../../kit/wait";

const journal = JSON.parse(readFileSync(join(migrationsFolder(), "meta", "_journal.json"), "utf8")) as {
  entries: unknown[];
};
const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
const fresh = `${new URL(databaseUrl).pathname.slice(1)}_late`;
const closers: (() => Promise<void>)[] = [];

afterAll(async () => {
  await killSpawned();
  for (const close of closers) await close();
  await admin.unsafe(`DROP DATABASE IF EXISTS "${fresh}" WITH (FORCE)`);
  await admin.end();
}, 30_000);

/** `url` with its port changed. */
const atPort = (url: string, port: number, pathname?: string) => {
  const changed = new URL(url);
  changed.port = String(port);
  if (pathname !== undefined) changed.pathname = pathname;
  return changed.toString();
};

const json = (line: string) => JSON.parse(line) as Record<string, unknown>;

test("migrate retries with one line per attempt, then exits 1 with one line when the database never comes", async () => {
  const port = freePort();
  const { exitCode, stdout, stderr } = await runMain(["--role=migrate"], {
    DATABASE_URL: atPort(databaseUrl, port),
    MIGRATE_WAIT_MS: "1500",
    LOG_LEVEL: "info",
  });
  expect(exitCode).toBe(1);
  // Every line is one JSON object: no stack dump, no library source lines.
  const lines = [...stdout, ...stderr].map(json);
  const retries = lines.filter((l) => l.msg === "database not reachable yet; retrying");
  expect(retries.length).toBeGreaterThanOrEqual(2);
  expect(retries.map((l) => l.attempt)).toEqual(retries.map((_, i) => i + 1));
  expect(retries[0]).toMatchObject({ level: "warn", role: "migrate", code: "ECONNREFUSED", retry_in_ms: 250 });
  const last = lines.filter((l) => l.level === "error");
  expect(last).toEqual([
    expect.objectContaining({
      msg: "the database was not reachable within MIGRATE_WAIT_MS; no migration was applied",
      attempts: retries.length + 1,
      reason: expect.stringContaining("ECONNREFUSED"),
    }),
  ]);
  expect(last[0]).not.toHaveProperty("err");
}, 20_000);

test("migrate waits for a database that comes up later and applies every migration", async () => {
  await admin.unsafe(`CREATE DATABASE "${fresh}"`);
  const port = freePort();
  const pgPort = Number(new URL(databaseUrl).port || 5432);
  const running = startMain(["--role=migrate"], {
    DATABASE_URL: atPort(databaseUrl, port, `/${fresh}`),
    MIGRATE_WAIT_MS: "30000",
    LOG_LEVEL: "info",
  });
  // The database comes up only once migrate has said it waits for it.
  await running.line((line) => line.includes("database not reachable yet; retrying"));
  const forwarder = startTcpProxy("127.0.0.1", pgPort, port);
  closers.push(async () => forwarder.stop());
  const { exitCode, stdout, stderr } = await running.done;
  expect(exitCode).toBe(0);
  const lines = [...stdout, ...stderr].map(json);
  expect(lines.filter((l) => l.msg === "database not reachable yet; retrying").length).toBeGreaterThanOrEqual(1);
  expect(stdout.map(json).at(-1)).toMatchObject({ level: "info", msg: "migrations applied" });
  const migrated = postgres(atPort(databaseUrl, pgPort, `/${fresh}`), { max: 1, onnotice: () => {} });
  try {
    const [row] = await migrated`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`;
    expect(row?.n).toBe(journal.entries.length);
  } finally {
    await migrated.end();
  }
}, 40_000);

test("a failure that waiting cannot mend (no such database) is final: one line, exit 1, no retries", async () => {
  const { exitCode, stdout, stderr } = await runMain(["--role=migrate"], {
    DATABASE_URL: atPort(databaseUrl, Number(new URL(databaseUrl).port || 5432), "/payouts_no_such_database"),
    MIGRATE_WAIT_MS: "30000",
    LOG_LEVEL: "info",
  });
  expect(exitCode).toBe(1);
  const lines = [...stdout, ...stderr].map(json);
  expect(lines).toEqual([
    expect.objectContaining({
      level: "error",
      msg: "migrations failed; none was applied",
      err: expect.objectContaining({ message: expect.stringContaining("payouts_no_such_database") }),
    }),
  ]);
}, 20_000);

test("api and worker start with PostgreSQL and RabbitMQ down, are not ready, and pay once both come up", async () => {
  const [pgPort, amqpPort, apiPort] = [freePort(), freePort(), freePort()];
  const env = {
    DATABASE_URL: atPort(databaseUrl, pgPort),
    AMQP_URL: atPort(amqpUrl, amqpPort),
    LOG_LEVEL: "error",
  };
  const api = spawnRole("api", { ...env, PORT: String(apiPort) });
  const worker = spawnRole("worker", { ...env, WORKER_THREADS: "1", GATEWAY_LATENCY_MS: "0" });
  const base = `http://127.0.0.1:${apiPort}`;

  // A generous bound: two processes start on a busy 2-core machine (the CI runs the suite there).
  const live = await eventually(() => fetch(`${base}/health/live`).catch(() => undefined), 45_000);
  expect(live.status).toBe(200);
  const notReady = await fetch(`${base}/health/ready`);
  expect(notReady.status).toBe(503);
  expect(await notReady.json()).toMatchObject({ status: "unavailable", database: "down", broker: "down" });

  const pg = startTcpProxy("127.0.0.1", Number(new URL(databaseUrl).port || 5432), pgPort);
  const mq = startTcpProxy("127.0.0.1", Number(new URL(amqpUrl).port || 5672), amqpPort);
  closers.push(
    async () => pg.stop(),
    async () => mq.stop(),
  );
  await eventually(async () => (await fetch(`${base}/health/ready`)).status === 200, 20_000, 200);
  const payout = await createAndAwaitCompleted(
    base,
    { amount: "7.00", currency: "USD", recipient_details: "late dependencies" },
    30_000,
  );
  expect(payout.status).toBe("COMPLETED");
  expect(api.exitCode).toBeNull();
  expect(worker.exitCode).toBeNull();
}, 120_000);
