// `bun run bench`: measures the service on this machine against PostgreSQL and RabbitMQ on the
// same box, prints one summary line and appends the results to bench/RESULTS.md.
//
// 1. calibration: PostgreSQL's own rate for a single-row INSERT of a payout-shaped row at the
//    load test's concurrency (pgbench when installed, else postgres.js);
// 2. create: POST /api/payouts/ at 64 connections for 10 s against the api role;
// 3. drain: 20,000 queued payouts, gateway latency 0, the worker role on its default settings;
// 4. latency-bound: 10,000 payouts, gateway latency 500 ms, 2 threads x 500 in flight.
//
// Environment: BENCH_ADMIN_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
// BENCH_AMQP_BASE_URL (default amqp://guest:guest@127.0.0.1:5672), BENCH_SECONDS (default 10).
import { appendFileSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import amqp from "amqplib";
import postgres from "postgres";
import { migratePostgres } from "../src/db/migrate";
import { declareTopology, QUEUE } from "../src/queue/rabbitmq";

const adminUrl = process.env.BENCH_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const amqpBase = process.env.BENCH_AMQP_BASE_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 64;
const DRAIN_COUNT = 20_000;
const LATENCY_COUNT = 10_000;
const LATENCY_MS = 500;
const LATENCY_THREADS = 2;
const LATENCY_CONCURRENCY = 500;
const PORT = 18_000 + Math.floor(Math.random() * 1000);

const name = "payouts_bench";
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
await admin.unsafe(`CREATE DATABASE ${name}`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${name}`;
const databaseUrl = dbUrl.toString();
await migratePostgres(databaseUrl);
const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });

const rabbitmqctl = (...args: string[]) => Bun.spawnSync(["rabbitmqctl", "-q", ...args]);
rabbitmqctl("delete_vhost", name);
rabbitmqctl("add_vhost", name);
rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
const amqpUrl = `${amqpBase}/${name}`;

// The roles run as `bun run start` runs them: with the runtime settings its script sets (the JSC
// heap hint), but measured as one process, without the `bun run` wrapper around it.
const startScript: string = (await Bun.file("package.json").json()).scripts.start;
const startEnv = Object.fromEntries([...startScript.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));

const env = (extra: Record<string, string>) => ({
  ...process.env,
  ...startEnv,
  DATABASE_URL: databaseUrl,
  AMQP_URL: amqpUrl,
  LOG_LEVEL: "warn",
  PORT: String(PORT),
  ...extra,
});

/** Resident memory of a process and its children, in MB (Linux /proc). */
function rssMb(pid: number): number {
  const pids = [pid];
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)) {
      if (child) pids.push(Number(child));
    }
  } catch {}
  let kb = 0;
  for (const p of pids) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      kb += Number(match?.[1] ?? 0);
    } catch {}
  }
  return Math.round(kb / 1024);
}

/** Samples a process's RSS every 100 ms; returns a function that stops and gives the peak. */
function peakRss(pid: number) {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 100);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMb(pid));
  };
}

async function waitReady() {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${PORT}/health/ready`)).ok) return;
    } catch {}
    await Bun.sleep(50);
  }
  throw new Error("the api did not become ready");
}

async function stop(proc: Bun.Subprocess) {
  proc.kill("SIGTERM");
  await proc.exited;
}

async function reset() {
  await sql`TRUNCATE payouts, idempotency_keys, simulated_gateway_payments`;
  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createConfirmChannel();
  await declareTopology(channel, []);
  await channel.purgeQueue(QUEUE);
  await connection.close();
}

async function calibrate(): Promise<{ rate: number; tool: string }> {
  const script =
    "INSERT INTO payouts (id, amount, currency, recipient_details, comment) VALUES (gen_random_uuid(), 1500.00, 'RUB', '40817810099910004312, BIC 044525225, Ivanov I.I.', 'benchmark');\n";
  const file = `/tmp/payouts-bench-${process.pid}.sql`;
  await Bun.write(file, script);
  const url = new URL(databaseUrl);
  const pgbench = Bun.which("pgbench");
  if (pgbench) {
    const out = Bun.spawnSync([
      pgbench,
      "-n",
      "-h",
      url.hostname,
      "-p",
      url.port || "5432",
      "-U",
      decodeURIComponent(url.username) || "postgres",
      "-c",
      String(CONNECTIONS),
      "-j",
      String(availableParallelism()),
      "-T",
      String(seconds),
      "-f",
      file,
      name,
    ]);
    const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(out.stdout.toString());
    if (match) return { rate: Math.round(Number(match[1])), tool: "pgbench" };
  }
  const pool = postgres(databaseUrl, { max: CONNECTIONS, onnotice: () => {} });
  let count = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < deadline) {
        await pool.unsafe(script);
        count++;
      }
    }),
  );
  await pool.end();
  return { rate: Math.round(count / ((performance.now() - started) / 1000)), tool: "postgres.js" };
}

async function createBench() {
  const api = Bun.spawn(["bun", "src/main.ts", "--role=api"], { env: env({}), stdout: "inherit", stderr: "inherit" });
  await waitReady();
  const peak = peakRss(api.pid);
  const load = Bun.spawn(
    ["bun", "bench/load.ts", `http://127.0.0.1:${PORT}/api/payouts/`, String(CONNECTIONS), String(seconds)],
    {
      stdout: "pipe",
    },
  );
  const result = JSON.parse(await new Response(load.stdout).text());
  const rss = peak();
  await stop(api);
  return { ...result, rss_mb: rss };
}

/** Stores `count` NEW payouts and publishes their ids (confirmed), as the api would have. */
async function enqueue(count: number) {
  const rows = await sql`
    INSERT INTO payouts (id, amount, currency, recipient_details, published_at)
    SELECT gen_random_uuid(), 100.00, 'EUR', 'DE89370400440532013000', now() FROM generate_series(1, ${count})
    RETURNING id`;
  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createConfirmChannel();
  for (const { id } of rows) {
    channel.sendToQueue(QUEUE, Buffer.from(JSON.stringify({ id })), {
      persistent: true,
      contentType: "application/json",
    });
  }
  await channel.waitForConfirms();
  await connection.close();
}

async function drainBench(count: number, extra: Record<string, string>) {
  await reset();
  await enqueue(count);
  const worker = Bun.spawn(["bun", "src/main.ts", "--role=worker"], {
    env: env(extra),
    stdout: "inherit",
    stderr: "inherit",
  });
  const peak = peakRss(worker.pid);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const [{ done } = { done: 0 }] =
      await sql`SELECT count(*)::int AS done FROM payouts WHERE status IN ('COMPLETED', 'FAILED')`;
    if (done >= count) break;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${count} payouts finished`);
    await Bun.sleep(100);
  }
  const rss = peak();
  await stop(worker);
  const [span = { completed: 0, seconds: 1 }] = await sql`
    SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
           extract(epoch FROM max(processed_at) - min(updated_at))::float AS seconds
    FROM payouts`;
  return { completed: span.completed, rate: Math.round(span.completed / span.seconds), rss_mb: rss };
}

const calibration = await calibrate();
await reset();
const create = await createBench();
const drain = await drainBench(DRAIN_COUNT, { GATEWAY_LATENCY_MS: "0" });
const slots = LATENCY_THREADS * LATENCY_CONCURRENCY;
const bound = Math.round(slots / (LATENCY_MS / 1000));
const latency = await drainBench(LATENCY_COUNT, {
  GATEWAY_LATENCY_MS: String(LATENCY_MS),
  WORKER_THREADS: String(LATENCY_THREADS),
  WORKER_CONCURRENCY: String(LATENCY_CONCURRENCY),
});

const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
const checks = {
  create_rate: ratio(create.rps, calibration.rate) >= 0.5,
  create_p99: create.p99_ms <= 30,
  create_errors: create.errors === 0,
  drain_rate: ratio(drain.rate, calibration.rate) >= 0.3,
  latency_bound: ratio(latency.rate, bound) >= 0.8,
  api_rss: create.rss_mb <= 100,
  worker_rss: Math.max(drain.rss_mb, latency.rss_mb) <= 150,
};
const met = Object.entries(checks);
const summary =
  `calibration ${calibration.rate}/s (${calibration.tool}) | ` +
  `create ${create.rps}/s (${ratio(create.rps, calibration.rate)}x) p50 ${create.p50_ms} ms p99 ${create.p99_ms} ms errors ${create.errors} rss ${create.rss_mb} MB | ` +
  `drain ${drain.rate}/s (${ratio(drain.rate, calibration.rate)}x) rss ${drain.rss_mb} MB | ` +
  `latency-bound ${latency.rate}/s of ${bound}/s (${ratio(latency.rate, bound)}) rss ${latency.rss_mb} MB | ` +
  `targets ${met.filter(([, ok]) => ok).length}/${met.length} met${
    met.some(([, ok]) => !ok)
      ? ` (missed: ${met
          .filter(([, ok]) => !ok)
          .map(([k]) => k)
          .join(", ")})`
      : ""
  }`;
console.log(summary);

const pgVersion = (await sql`SHOW server_version`)[0]?.server_version;
const machine = `${availableParallelism()} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}, PostgreSQL ${pgVersion}`;
appendFileSync(
  "bench/RESULTS.md",
  `\n## ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC\n\nMachine: ${machine}\n\n` +
    "| measure | result | target | met |\n|---|---|---|---|\n" +
    `| calibration: PostgreSQL INSERT at ${CONNECTIONS} clients (${calibration.tool}) | ${calibration.rate}/s | | |\n` +
    `| create: POST at ${CONNECTIONS} connections, ${seconds} s | ${create.rps}/s = ${ratio(create.rps, calibration.rate)}x | >= 0.5x | ${checks.create_rate ? "yes" : "no"} |\n` +
    `| create p50 / p99 | ${create.p50_ms} / ${create.p99_ms} ms | p99 <= 30 ms | ${checks.create_p99 ? "yes" : "no"} |\n` +
    `| create errors | ${create.errors} of ${create.requests} | 0 | ${checks.create_errors ? "yes" : "no"} |\n` +
    `| api RSS (peak) | ${create.rss_mb} MB | <= 100 MB | ${checks.api_rss ? "yes" : "no"} |\n` +
    `| drain: ${DRAIN_COUNT} payouts, latency 0, default settings | ${drain.rate}/s = ${ratio(drain.rate, calibration.rate)}x | >= 0.3x | ${checks.drain_rate ? "yes" : "no"} |\n` +
    `| latency-bound: ${LATENCY_COUNT} payouts, ${LATENCY_MS} ms, ${LATENCY_THREADS}x${LATENCY_CONCURRENCY} in flight | ${latency.rate}/s of ${bound}/s = ${ratio(latency.rate, bound)} | >= 0.8 | ${checks.latency_bound ? "yes" : "no"} |\n` +
    `| worker RSS (peak, drain / latency-bound) | ${drain.rss_mb} / ${latency.rss_mb} MB | <= 150 MB | ${checks.worker_rss ? "yes" : "no"} |\n\n` +
    `Summary: ${summary}\n`,
);

await sql.end();
await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
await admin.end();
rabbitmqctl("delete_vhost", name);
