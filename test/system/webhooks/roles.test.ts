// Who delivers: the worker role and role `all` (also on the embedded PGlite), never the api role.
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onCleanup } from "../../kit/cleanup";
import { freePort, spawnRole, startMain, withKey } from "../../kit/processes";
import { startReceiver } from "../../kit/receiver";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker } from "../processing/harness";

const fixtures = processingFixtures();
const WEBHOOKS = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true", WEBHOOK_ALLOW_HTTP: "true", GATEWAY_LATENCY_MS: "0" };

function receiver() {
  const r = startReceiver([]);
  onCleanup(async () => r.stop());
  return r;
}

/** POSTs once the role listens: a role starts in seconds, longer on a loaded machine. */
async function post(base: string, path: string, body: unknown, key?: string) {
  const headers = await withKey({ "content-type": "application/json" }, key);
  const response = await eventually(
    () =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      }).catch(() => undefined),
    60_000,
  );
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; secret: string };
}

const payout = { amount: "5", currency: "RUB", recipient_details: "40817810099910004312" };

test("role all on the embedded PGlite delivers a payout's whole life, signed", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "payouts-pglite-"));
  onCleanup(async () => rmSync(dataDir, { recursive: true, force: true }));
  const port = freePort();
  const all = startMain(["--role=all"], {
    ...WEBHOOKS,
    DATABASE_URL: "",
    AMQP_URL: "",
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: `${port}`,
    LOG_LEVEL: "debug",
    METRICS_PORT: "0",
  });
  const base = `http://127.0.0.1:${port}`;
  // PGlite takes 10 to 21 s to start on a loaded machine: wait for readiness, not a guess.
  await eventually(
    async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200,
    90_000,
    200,
  );
  // The embedded default made its development key: in $DATA_DIR/dev-api-key (0600), printed once
  // plainly, never in a log line (at debug level); the api takes it.
  const file = join(dataDir, "dev-api-key");
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const key = readFileSync(file, "utf8").trim();
  expect(key).toMatch(/^pk_/);
  const printed = await all.line((line) => line.includes(key));
  expect(printed.startsWith("{")).toBe(false);
  expect((await fetch(`${base}/api/payouts/`)).status).toBe(401);
  const r = receiver();
  r.secrets.push((await post(base, "/api/webhook-endpoints/", { url: r.url }, key)).secret);
  const { id } = await post(base, "/api/payouts/", payout, key);
  await eventually(async () => r.received.length >= 3, 30_000);
  // Order is not guaranteed: by the event's id, which is its time.
  const byTime = [...r.received].sort((a, b) => (a.id < b.id ? -1 : 1));
  expect(byTime.map((got) => [got.event.type, got.event.payout_id, got.verified[0]])).toEqual([
    ["payout.created", id, true],
    ["payout.processing", id, true],
    ["payout.completed", id, true],
  ]);
  all.child.kill("SIGTERM");
  const { stdout, stderr } = await all.done;
  const lines = [...stdout, ...stderr];
  expect(lines.filter((line) => line.includes(key))).toHaveLength(1);
  expect(lines.some((line) => line.includes('"msg":"development API key created"'))).toBe(true);
}, 150_000);

test("the api role delivers nothing; a worker role delivers what waited", async () => {
  const port = freePort();
  spawnRole("api", { ...WEBHOOKS, PORT: `${port}` });
  const base = `http://127.0.0.1:${port}`;
  const r = receiver();
  r.secrets.push((await post(base, "/api/webhook-endpoints/", { url: r.url })).secret);
  const { id } = await post(base, "/api/payouts/", payout);
  // The api role's delivery of payout.created is owed from here on; a worker comes only later.
  const workerStarted = Date.now();
  await spawnWorker(fixtures.broker, WEBHOOKS);
  await eventually(async () => r.received.some((got) => got.event.type === "payout.completed"), 30_000);
  // Everything arrived once the worker ran: the api role, running all along, sent nothing.
  expect(r.received.every((got) => got.at >= workerStarted)).toBe(true);
  expect(r.received.filter((got) => got.event.payout_id === id).map((got) => got.event.type)).toContain(
    "payout.created",
  );
}, 60_000);
