// The compiled binary, as the Docker image runs it: built by the package.json build script into a
// directory of its own, started in each role from a working directory with no project files,
// against the run's PostgreSQL database and RabbitMQ vhost (test/kit/).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { amqpUrl } from "../kit/broker";
import { createAndAwaitCompleted, freePort } from "../kit/processes";
import { eventually } from "../kit/wait";
import { buildBinary } from "./build";

const dir = mkdtempSync(join(tmpdir(), "payouts-binary-"));
const binary = join(dir, "dist", "payouts");
const elsewhere = join(dir, "cwd");
mkdirSync(elsewhere);

const port = freePort();
const workerMetricsPort = freePort();
const api = `http://127.0.0.1:${port}`;
const running: Subprocess[] = [];
let consumersBefore = 0;

function start(args: string[], env: Record<string, string> = {}): Subprocess {
  const child = Bun.spawn([binary, ...args], {
    cwd: elsewhere,
    env: { ...process.env, ...env },
    stdout: "ignore",
    stderr: "inherit",
  });
  running.push(child);
  return child;
}

/** Runs the binary to its end; an undefined variable is removed from the environment. */
function run(args: string[], overrides: Record<string, string | undefined> = {}) {
  const env = { ...process.env, ...overrides };
  for (const [name, value] of Object.entries(overrides)) if (value === undefined) delete env[name];
  const result = Bun.spawnSync([binary, ...args], { cwd: elsewhere, env, stdout: "pipe", stderr: "pipe" });
  return { exitCode: result.exitCode, stderr: result.stderr.toString() };
}

/** Consumers of the payouts queue in the run's vhost. */
function payoutsConsumers(): number {
  const vhost = decodeURIComponent(new URL(amqpUrl).pathname.slice(1));
  const result = Bun.spawnSync(["rabbitmqctl", "-q", "list_consumers", "-p", vhost, "queue_name"], { stdout: "pipe" });
  return result.stdout
    .toString()
    .split("\n")
    .filter((line) => line.trim() === "payouts").length;
}

const apiReady = () => eventually(async () => (await fetch(`${api}/health/ready`).catch(() => undefined))?.ok, 20_000);

beforeAll(
  () => {
    buildBinary(dir);

    consumersBefore = payoutsConsumers();
    start(["--role=api"], { PORT: String(port) });
    start(["--role=worker"], { WORKER_THREADS: "2", GATEWAY_LATENCY_MS: "0", METRICS_PORT: String(workerMetricsPort) });
  },
  { timeout: 300_000 },
);

afterAll(async () => {
  for (const child of running) child.kill("SIGTERM");
  await Promise.all(
    running.map((child) => Promise.race([child.exited, Bun.sleep(10_000).then(() => child.kill("SIGKILL"))])),
  );
  rmSync(dir, { recursive: true, force: true });
  // Up to 10 s for the children to drain, beyond the default hook timeout.
}, 15_000);

test("--role=migrate finds the migrations beside the binary and exits 0", () => {
  const result = run(["--role=migrate"]);
  expect(result).toEqual({ exitCode: 0, stderr: expect.any(String) });
});

test("a payout posted to the binary's api is paid by the binary's worker", async () => {
  await apiReady();
  const payout = await createAndAwaitCompleted(
    api,
    { amount: "12.34", currency: "EUR", recipient_details: "binary test" },
    20_000,
  );
  expect(payout.amount).toBe("12.34");
}, 30_000);

test("the binary's worker role consumes on WORKER_THREADS threads", async () => {
  // Each thread has its own AMQP connection and consumer; the main thread only publishes.
  await eventually(async () => payoutsConsumers() >= consumersBefore + 2, 20_000);
  expect(payoutsConsumers()).toBe(consumersBefore + 2);
}, 30_000);

test("Swagger UI and its assets are served from the binary", async () => {
  await apiReady();
  for (const path of [
    "/swagger",
    "/swagger/json",
    "/swagger/assets/swagger-ui.css",
    "/swagger/assets/swagger-ui-bundle.js",
  ]) {
    const response = await fetch(`${api}${path}`);
    expect({ path, status: response.status }).toEqual({ path, status: 200 });
    expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
  }
}, 30_000);

test("--healthcheck exits 0 while the api is ready and 1 when nothing answers", async () => {
  await apiReady();
  expect(run(["--healthcheck"], { PORT: String(port) }).exitCode).toBe(0);
  expect(run(["--healthcheck"], { PORT: String(freePort()) }).exitCode).toBe(1);
}, 30_000);

test("--healthcheck --role=worker asks the worker's /health on METRICS_PORT, not the api's port", async () => {
  const env = { PORT: String(freePort()), METRICS_PORT: String(workerMetricsPort) };
  await eventually(async () => run(["--healthcheck", "--role=worker"], env).exitCode === 0, 20_000, 200);
  expect(run(["--healthcheck", "--role=api"], env).exitCode).toBe(1);
  expect(run(["--healthcheck", "--role=worker"], { ...env, METRICS_PORT: String(freePort()) }).exitCode).toBe(1);
}, 30_000);

test("--role=all without DATABASE_URL stops with a message: the binary has no embedded PGlite", () => {
  const result = run(["--role=all"], { DATABASE_URL: undefined, AMQP_URL: undefined, PORT: String(freePort()) });
  expect(result.exitCode).toBe(2);
  expect(result.stderr).toContain("DATABASE_URL");
});
