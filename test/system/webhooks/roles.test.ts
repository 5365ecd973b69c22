// Who delivers: the worker role and role `all` (also on the embedded PGlite), never the api role.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onCleanup } from "../../kit/cleanup";
import { freePort, spawnRole } from "../../kit/processes";
import { startReceiver } from "../../kit/receiver";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker } from "../processing/harness";

const fixtures = processingFixtures();
const WEBHOOKS = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true", GATEWAY_LATENCY_MS: "0" };

function receiver() {
  const r = startReceiver([]);
  onCleanup(async () => r.stop());
  return r;
}

async function post(base: string, path: string, body: unknown) {
  const response = await eventually(() =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }).catch(() => undefined),
  );
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; secret: string };
}

const payout = { amount: "5", currency: "RUB", recipient_details: "40817810099910004312" };

test("role all on the embedded PGlite delivers a payout's whole life, signed", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "payouts-pglite-"));
  onCleanup(async () => rmSync(dataDir, { recursive: true, force: true }));
  const port = freePort();
  spawnRole("all", { ...WEBHOOKS, DATABASE_URL: "", AMQP_URL: "", DATA_DIR: dataDir, PORT: `${port}` });
  const base = `http://127.0.0.1:${port}`;
  const r = receiver();
  r.secrets.push((await post(base, "/api/webhook-endpoints/", { url: r.url })).secret);
  const { id } = await post(base, "/api/payouts/", payout);
  await eventually(async () => r.received.length >= 3, 30_000);
  // Order is not guaranteed: by the event's id, which is its time.
  const byTime = [...r.received].sort((a, b) => (a.id < b.id ? -1 : 1));
  expect(byTime.map((got) => [got.event.type, got.event.payout_id, got.verified[0]])).toEqual([
    ["payout.created", id, true],
    ["payout.processing", id, true],
    ["payout.completed", id, true],
  ]);
}, 60_000);

test("the api role delivers nothing; a worker role delivers what waited", async () => {
  const port = freePort();
  spawnRole("api", { ...WEBHOOKS, PORT: `${port}` });
  const base = `http://127.0.0.1:${port}`;
  const r = receiver();
  r.secrets.push((await post(base, "/api/webhook-endpoints/", { url: r.url })).secret);
  const { id } = await post(base, "/api/payouts/", payout);
  await Bun.sleep(1500);
  expect(r.received).toEqual([]);
  await spawnWorker(fixtures.broker, WEBHOOKS);
  await eventually(async () => r.received.some((got) => got.event.type === "payout.completed"), 30_000);
  expect(r.received.filter((got) => got.event.payout_id === id).map((got) => got.event.type)).toContain(
    "payout.created",
  );
}, 60_000);
