// `bun run bench`: measures the service against the floor of its own stack (issue 12), on this
// machine, in one run, prints one summary line and appends the results to bench/RESULTS.md.
//
// 0. pgbench: PostgreSQL's own single-row INSERT at the load test's concurrency (second anchor);
// 1. create: POST /api/payouts/ at 64 connections for 10 s, against the create floor
//    (bench/floor-create.ts), then against the api role, every request with an API key (made by
//    the keys role); then the key's cost per request in-process (bench/guard.ts);
// 2. drain: 50,000 queued payouts, drained by the drain floor (bench/floor-drain.ts), then by the
//    worker role on its default settings with gateway latency 0;
// 3. latency-bound: 10,000 payouts, gateway latency 500 ms, 2 threads x 500 in flight.
// The service runs as deployed: request log lines at info (written to a file), metrics on. Each
// phase records the CPU its processes used, the PostgreSQL backends serving them included, and
// keeps the tables' statistics fresh as autovacuum would (see keepAnalyzed).
//
// `bun run bench -- --scale` runs bench/scale.ts instead: the service over 5 million payouts;
// `bun run bench -- --profile` runs bench/profile.ts: CPU profiles and PostgreSQL's statements.
//
// Environment: BENCH_ADMIN_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
// BENCH_AMQP_BASE_URL (default amqp://guest:guest@127.0.0.1:5672), BENCH_SECONDS (default 10).
import { appendFileSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { QUEUE } from "../src/queue/rabbitmq/topology";
import { guardCost } from "./guard";
import {
  awaitDrained,
  backendCpuSeconds,
  benchEnvironment,
  benchKey,
  brokerCpuSeconds,
  CONNECTIONS,
  cpuSeconds,
  enqueue,
  FLOOR_QUEUE,
  keepAnalyzed,
  load,
  machine,
  peakRss,
  randomPort,
  ratio,
  reset,
  roleEnv,
  seconds,
  spawnChild,
  stamp,
  stop,
  subscribe,
  waitReady,
} from "./lib";

if (Bun.argv.includes("--scale") || Bun.argv.includes("--profile")) {
  await import(Bun.argv.includes("--scale") ? "./scale" : "./profile");
  process.exit(0);
}

const DRAIN_COUNT = 50_000;
const LATENCY_COUNT = 10_000;
const LATENCY_MS = 500;
const LATENCY_THREADS = 2;
const LATENCY_CONCURRENCY = 500;

const env = await benchEnvironment("payouts_bench");
const logFile = `/tmp/payouts-bench-${process.pid}.log`;

const processEnv = (port: number, extra: Record<string, string> = {}) => roleEnv(env, port, { FLOOR_QUEUE, ...extra });

async function pgbench(): Promise<number> {
  const file = `/tmp/payouts-bench-${process.pid}.sql`;
  await Bun.write(
    file,
    "INSERT INTO payouts (id, amount, currency, recipient_details, comment) VALUES (gen_random_uuid(), 1500.00, 'RUB', '40817810099910004312, BIC 044525225, Ivanov I.I.', 'benchmark');\n",
  );
  const url = new URL(env.databaseUrl);
  const out = Bun.spawnSync([
    "pgbench",
    "-n",
    ...["-h", url.hostname, "-p", url.port || "5432", "-U", decodeURIComponent(url.username) || "postgres"],
    ...["-c", String(CONNECTIONS), "-j", String(availableParallelism()), "-T", String(seconds), "-f", file],
    env.name,
  ]);
  rmSync(file, { force: true });
  const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(out.stdout.toString());
  if (!match) throw new Error(`pgbench failed (is it installed?): ${out.stderr.toString()}`);
  return Math.round(Number(match[1]));
}

type Cpu = { app: number; postgres: number; broker: number };
const perUnit = (cpu: Cpu, units: number) => ({
  app_us: Math.round((cpu.app / units) * 1e6),
  postgres_us: Math.round((cpu.postgres / units) * 1e6),
  broker_us: Math.round((cpu.broker / units) * 1e6),
});

// The webhook receiver (issue 10): while the service is measured, one endpoint is subscribed to
// every event type and this receiver answers each delivery 200. The floors have none.
const receiverPort = randomPort() + 3000;
const receiver = spawnChild(["bun", "bench/receiver.ts"], {
  env: { ...process.env, PORT: String(receiverPort) },
  stdout: "ignore",
  stderr: "inherit",
});
const receiverUrl = `http://127.0.0.1:${receiverPort}/`;
await waitReady(receiverUrl);
const webhookEnv = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true", WEBHOOK_ALLOW_HTTP: "true" };

async function subscribed() {
  await fetch(receiverUrl, { method: "DELETE" });
  await subscribe(env, `${receiverUrl}webhooks`);
}

const countEvents = async () =>
  (
    await env.sql<{ events: number; fanout: number; deliveries: number; pending: number }[]>`
      SELECT (SELECT count(*)::int FROM payout_events) AS events, (SELECT count(*)::int FROM webhook_fanout) AS fanout,
             count(*)::int AS deliveries, count(*) FILTER (WHERE status = 'pending')::int AS pending
      FROM webhook_deliveries`
  )[0] ?? { events: 0, fanout: 0, deliveries: 0, pending: 0 };

/**
 * Waits until no delivery is pending; how many events there are and the receiver got, and when.
 * Ten minutes: one endpoint gets WEBHOOK_ENDPOINT_CONCURRENCY (8) attempts in flight per process,
 * and the drain's 150,000 deliveries took 5.5 minutes on the shared machine (about 450/s; the table
 * records how long it took).
 */
async function awaitDelivered(since: number) {
  const deadline = Date.now() + 10 * 60_000;
  let counts = await countEvents();
  while (counts.pending > 0 || counts.fanout > 0) {
    if (Date.now() > deadline) {
      throw new Error(`bench: ${counts.pending} webhook deliveries pending, ${counts.fanout} events not fanned out`);
    }
    await Bun.sleep(100);
    counts = await countEvents();
  }
  const { events: received } = (await (await fetch(receiverUrl)).json()) as { events: number };
  return { ...counts, received, after_s: Math.round((performance.now() - since) / 100) / 10 };
}

/** The create load against `command`, which serves POST /api/payouts/ (the floor answers any path). */
async function createBench(command: string[], readyPath: string, webhooks = false) {
  await reset(env);
  if (webhooks) await subscribed();
  const port = randomPort();
  const analyzed = keepAnalyzed(env);
  const proc = spawnChild(command, { env: processEnv(port), stdout: Bun.file(logFile), stderr: "inherit" });
  await waitReady(`http://127.0.0.1:${port}${readyPath}`);
  const peak = peakRss(proc.pid);
  const broker = brokerCpuSeconds();
  const app = cpuSeconds(proc.pid);
  const result = await load(`http://127.0.0.1:${port}/api/payouts/`, CONNECTIONS, seconds, "POST", await benchKey(env));
  const cpu = {
    app: cpuSeconds(proc.pid) - app,
    postgres: await backendCpuSeconds(env),
    broker: brokerCpuSeconds() - broker,
  };
  const rss = peak();
  await stop(proc);
  await analyzed();
  const logLines = readFileSync(logFile, "utf8").split('"msg":"request"').length - 1;
  rmSync(logFile, { force: true });
  // The api only records each event's fan-out (in its create's transaction); the worker role makes
  // the deliveries and sends them.
  const webhook = webhooks ? await countEvents() : undefined;
  return { ...result, rss_mb: rss, log_lines: logLines, cpu: perUnit(cpu, result.requests), webhook };
}

async function drainBench(
  command: string[],
  queue: string,
  count: number,
  extra: Record<string, string> = {},
  webhooks = false,
) {
  await reset(env);
  if (webhooks) await subscribed();
  await enqueue(env, queue, count);
  const analyzed = keepAnalyzed(env);
  const proc = spawnChild(command, { env: processEnv(randomPort(), extra), stdout: "ignore", stderr: "inherit" });
  const peak = peakRss(proc.pid);
  const broker = brokerCpuSeconds();
  const drained = await awaitDrained(env);
  const drainedAt = performance.now();
  const cpu = {
    app: cpuSeconds(proc.pid),
    postgres: await backendCpuSeconds(env),
    broker: brokerCpuSeconds() - broker,
  };
  // Deliveries go on after the payouts are done: every event must reach the receiver.
  const webhook = webhooks ? await awaitDelivered(drainedAt) : undefined;
  const rss = peak();
  await stop(proc);
  await analyzed();
  return { ...drained, rss_mb: rss, cpu: perUnit(cpu, count), webhook };
}

const api = ["bun", "src/main.ts", "--role=api"];
const worker = ["bun", "src/main.ts", "--role=worker"];

const calibration = await pgbench();
const floorCreate = await createBench(["bun", "bench/floor-create.ts"], "/");
const create = await createBench(api, "/health/ready", true);
// The key's cost: the guard's time per request, against the api process's CPU per create. With the
// api's CPU the bottleneck (the worst case), the create rate with keys is this share of the rate
// without: 1 - guard / (api CPU per create).
const guard = await guardCost(env.databaseUrl, await benchKey(env));
const keyedShare = Number((1 - guard.guard_us / create.cpu.app_us).toFixed(3));
const floorDrain = await drainBench(["bun", "bench/floor-drain.ts"], FLOOR_QUEUE, DRAIN_COUNT);
const drain = await drainBench(worker, QUEUE, DRAIN_COUNT, { GATEWAY_LATENCY_MS: "0", ...webhookEnv }, true);
const slots = LATENCY_THREADS * LATENCY_CONCURRENCY;
const bound = Math.round(slots / (LATENCY_MS / 1000));
const latency = await drainBench(
  worker,
  QUEUE,
  LATENCY_COUNT,
  {
    GATEWAY_LATENCY_MS: String(LATENCY_MS),
    WORKER_THREADS: String(LATENCY_THREADS),
    WORKER_CONCURRENCY: String(LATENCY_CONCURRENCY),
    ...webhookEnv,
  },
  true,
);
receiver.kill();

const checks = {
  create_rate: ratio(create.rps, floorCreate.rps) >= 0.7,
  create_p99: ratio(create.p99_ms, floorCreate.p99_ms) <= 2,
  create_errors: create.errors === 0 && floorCreate.errors === 0,
  create_logged: create.log_lines >= create.requests,
  keyed_create_rate: keyedShare >= 0.95,
  drain_rate: ratio(drain.rate, floorDrain.rate) >= 0.5,
  latency_bound: ratio(latency.rate, bound) >= 0.9,
  api_rss: create.rss_mb <= 100,
  worker_rss: Math.max(drain.rss_mb, latency.rss_mb) <= 150,
  // Every event has its delivery, and every delivery reached the receiver.
  webhooks:
    (create.webhook?.fanout ?? 0) + (create.webhook?.deliveries ?? 0) === create.webhook?.events &&
    [drain.webhook, latency.webhook].every((w) => w && w.deliveries === w.events && w.received === w.events),
};
const met = Object.entries(checks);
const missed = met.filter(([, ok]) => !ok).map(([k]) => k);
const summary =
  `pgbench ${calibration}/s | ` +
  `create ${create.rps}/s = ${ratio(create.rps, floorCreate.rps)}x floor ${floorCreate.rps}/s (${ratio(create.rps, calibration)}x pgbench), ` +
  `p99 ${create.p99_ms} ms = ${ratio(create.p99_ms, floorCreate.p99_ms)}x floor ${floorCreate.p99_ms} ms, errors ${create.errors}, rss ${create.rss_mb} MB, ` +
  `API key ${guard.guard_us} us per request = ${keyedShare}x the rate without | ` +
  `drain ${drain.rate}/s = ${ratio(drain.rate, floorDrain.rate)}x floor ${floorDrain.rate}/s (${ratio(drain.rate, calibration)}x pgbench), rss ${drain.rss_mb} MB | ` +
  `latency-bound ${latency.rate}/s of ${bound}/s (${ratio(latency.rate, bound)}), rss ${latency.rss_mb} MB | ` +
  `targets ${met.length - missed.length}/${met.length} met${missed.length ? ` (missed: ${missed.join(", ")})` : ""}`;
console.log(summary);

const cpuCell = (c: ReturnType<typeof perUnit>) => `${c.app_us} / ${c.postgres_us} / ${c.broker_us}`;
const yes = (ok: boolean) => (ok ? "yes" : "no");
appendFileSync(
  "bench/RESULTS.md",
  `\n## ${stamp()}\n\nMachine: ${await machine(env)}\n\n` +
    "| measure | service | floor | ratio | target | met |\n|---|---|---|---|---|---|\n" +
    `| create: POST at ${CONNECTIONS} connections, ${seconds} s | ${create.rps}/s | ${floorCreate.rps}/s | ${ratio(create.rps, floorCreate.rps)}x | >= 0.7x | ${yes(checks.create_rate)} |\n` +
    `| create p50 / p99 | ${create.p50_ms} / ${create.p99_ms} ms | ${floorCreate.p50_ms} / ${floorCreate.p99_ms} ms | p99 ${ratio(create.p99_ms, floorCreate.p99_ms)}x | p99 <= 2x | ${yes(checks.create_p99)} |\n` +
    `| create errors | ${create.errors} of ${create.requests} | ${floorCreate.errors} of ${floorCreate.requests} | | 0 | ${yes(checks.create_errors)} |\n` +
    `| request log lines at info | ${create.log_lines} | none | | one per request | ${yes(checks.create_logged)} |\n` +
    `| API key check per request (bench/guard.ts, in-process, median of 11 rounds): with / without the guard; create rate with keys / without, worst case (1 - guard / api CPU per create) | ${guard.with_us} / ${guard.without_us} us: ${guard.guard_us} us | api ${create.cpu.app_us} us CPU per create | ${keyedShare}x | >= 0.95x | ${yes(checks.keyed_create_rate)} |\n` +
    `| create CPU per request, us: process / PostgreSQL backends / RabbitMQ | ${cpuCell(create.cpu)} | ${cpuCell(floorCreate.cpu)} | | | |\n` +
    `| api RSS (peak) | ${create.rss_mb} MB | ${floorCreate.rss_mb} MB | | <= 100 MB | ${yes(checks.api_rss)} |\n` +
    `| drain: ${DRAIN_COUNT} payouts, gateway latency 0, default settings | ${drain.rate}/s | ${floorDrain.rate}/s | ${ratio(drain.rate, floorDrain.rate)}x | >= 0.5x | ${yes(checks.drain_rate)} |\n` +
    `| drain CPU per payout, us: process / PostgreSQL backends / RabbitMQ | ${cpuCell(drain.cpu)} | ${cpuCell(floorDrain.cpu)} | | | |\n` +
    `| latency-bound: ${LATENCY_COUNT} payouts, ${LATENCY_MS} ms, ${LATENCY_THREADS}x${LATENCY_CONCURRENCY} in flight | ${latency.rate}/s | bound ${bound}/s | ${ratio(latency.rate, bound)} | >= 0.9 | ${yes(checks.latency_bound)} |\n` +
    `| worker RSS (peak, drain / latency-bound) | ${drain.rss_mb} / ${latency.rss_mb} MB | ${floorDrain.rss_mb} MB | | <= 150 MB | ${yes(checks.worker_rss)} |\n` +
    `| webhooks: one endpoint subscribed to every event during the service's phases (bench/receiver.ts answers 200) | create: ${create.webhook?.fanout} fan-outs recorded for ${create.webhook?.events} events; drain: ${drain.webhook?.received} of ${drain.webhook?.events} events received, the last ${drain.webhook?.after_s} s after the last payout; latency-bound: ${latency.webhook?.received} of ${latency.webhook?.events}, ${latency.webhook?.after_s} s after | none | | every event delivered | ${yes(checks.webhooks)} |\n` +
    `| second anchor: pgbench single-row INSERT at ${CONNECTIONS} clients | create ${ratio(create.rps, calibration)}x, drain ${ratio(drain.rate, calibration)}x | ${calibration}/s | | | |\n\n` +
    `Summary: ${summary}\n`,
);

await env.drop();
