// What `bun run bench` and `bun run bench -- --scale` share: a fresh database migrated with the
// project's migrations and a vhost of their own, the processes under test started as
// `bun run start` starts them, and their resident memory and CPU read from Linux /proc.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import amqp from "amqplib";
import postgres from "postgres";
import { parseSecretKeys } from "../src/config";
import { migratePostgres } from "../src/db/migrate";
import { declareTopology, QUEUE } from "../src/queue/rabbitmq/topology";
import { secretBox } from "../src/webhooks/secret-box";
import { newSecret } from "../src/webhooks/signing";

export const adminUrl = process.env.BENCH_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const amqpBase = process.env.BENCH_AMQP_BASE_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const seconds = Number(process.env.BENCH_SECONDS ?? 10);
export const CONNECTIONS = 64;
/** The floor programs' queue, next to the service's own in the bench's vhost; `reset` declares it. */
export const FLOOR_QUEUE = "floor";

const rabbitmqctl = (...args: string[]) => Bun.spawnSync(["rabbitmqctl", "-q", ...args]);

/**
 * A fresh database (migrated) and vhost named `name`; `drop` removes both. With `reuse`, a database
 * of that name that exists is kept as it is (migrated to the latest), and removed by `drop`.
 */
export async function benchEnvironment(name: string, reuse = false) {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const [existing] = await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`;
  if (!(reuse && existing)) {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.unsafe(`CREATE DATABASE ${name}`);
  }
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${name}`;
  const databaseUrl = dbUrl.toString();
  await migratePostgres(databaseUrl);
  // application_name tells the bench's own connections from those of the processes it measures.
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {}, connection: { application_name: "bench" } });
  rabbitmqctl("delete_vhost", name);
  rabbitmqctl("add_vhost", name);
  rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
  const amqpUrl = `${amqpBase}/${name}`;
  return {
    name,
    databaseUrl,
    amqpUrl,
    sql,
    async drop() {
      await sql.end();
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
      rabbitmqctl("delete_vhost", name);
    },
  };
}

export type BenchEnvironment = Awaited<ReturnType<typeof benchEnvironment>>;

// A bench that fails half-way must not leave a role running against the next run's database
// (same name): every process it starts is killed when it exits, however it exits.
const children = new Set<Bun.Subprocess>();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Bun.spawn, and the process killed when the bench exits. */
export function spawnChild(command: string[], options: Parameters<typeof Bun.spawn>[1] = {}): Bun.Subprocess {
  const child = Bun.spawn(command, options);
  children.add(child);
  void child.exited.then(() => children.delete(child));
  return child;
}

export const randomPort = () => 18_000 + Math.floor(Math.random() * 1000);

// The roles run as `bun run start` runs them: with the runtime settings its script sets (the JSC
// heap hint), but measured as one process, without the `bun run` wrapper around it.
const startScript: string = (await Bun.file("package.json").json()).scripts.start;
export const startEnv = Object.fromEntries([...startScript.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));

/** The bench's WEBHOOK_SECRET_KEYS, new each run: every role gets it, and subscribe() seals with it. */
const BENCH_SECRET_KEYS = `bench:${randomBytes(32).toString("base64")}`;
const benchBox = secretBox(parseSecretKeys(BENCH_SECRET_KEYS, "the bench's key"));

/**
 * The environment a role of the service runs with in a bench: the run's database and vhost, the
 * start script's settings, request logs at info, and its metrics on `port` + 1000.
 */
export const roleEnv = (
  env: { databaseUrl: string; amqpUrl: string },
  port: number,
  extra: Record<string, string> = {},
): Record<string, string | undefined> => ({
  ...process.env,
  ...startEnv,
  DATABASE_URL: env.databaseUrl,
  AMQP_URL: env.amqpUrl,
  LOG_LEVEL: "info",
  PORT: String(port),
  METRICS_PORT: String(port + 1000),
  WEBHOOK_SECRET_KEYS: BENCH_SECRET_KEYS,
  ...extra,
});

/** Resident memory of a process and its children, in MB (Linux /proc). */
export function rssMb(pid: number): number {
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
export function peakRss(pid: number) {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 100);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMb(pid));
  };
}

/** CPU seconds (user + system, every thread) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of RabbitMQ's Erlang VM (shared with anything else using the broker meanwhile). */
export function brokerCpuSeconds(): number {
  // The broker's VM, not the short-lived ones rabbitmqctl starts.
  const pid = Bun.spawnSync(["pgrep", "-o", "-u", "rabbitmq", "-x", "beam.smp"]).stdout.toString().trim();
  return pid ? cpuSeconds(Number(pid)) : 0;
}

/** CPU seconds of the PostgreSQL backends serving this database's measured clients (not the bench's). */
export async function backendCpuSeconds(env: BenchEnvironment): Promise<number> {
  const rows = await env.sql<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity WHERE datname = ${env.name} AND application_name <> 'bench'`;
  return rows.reduce((sum, { pid }) => sum + cpuSeconds(pid), 0);
}

export async function waitReady(url: string) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await Bun.sleep(50);
  }
  throw new Error(`${url} did not become ready`);
}

export async function stop(proc: Bun.Subprocess) {
  proc.kill("SIGTERM");
  await proc.exited;
}

export type LoadResult = { requests: number; errors: number; rps: number; p50_ms: number; p99_ms: number };

/** bench/load.ts in its own process: `connections` clients for `secs` seconds, sending `key`. */
export async function load(
  url: string,
  connections: number,
  secs: number,
  method: string,
  key: string,
): Promise<LoadResult> {
  const proc = Bun.spawn(["bun", "bench/load.ts", url, String(connections), String(secs), method], {
    stdout: "pipe",
    env: { ...process.env, BENCH_API_KEY: key },
  });
  return JSON.parse(await new Response(proc.stdout).text());
}

const keys = new Map<string, Promise<string>>();

/**
 * The bench's API key in `env`'s database, made once by the keys role as an operator makes one
 * (reset() keeps api_keys): every run of the api is measured with authentication on.
 */
export function benchKey(env: { databaseUrl: string }): Promise<string> {
  let key = keys.get(env.databaseUrl);
  if (!key) {
    key = (async () => {
      const proc = Bun.spawn(
        ["bun", "src/main.ts", "--role=keys", "create", "--name", "bench", "--scopes", "payouts:read,payouts:write"],
        {
          env: { ...process.env, DATABASE_URL: env.databaseUrl, LOG_LEVEL: "error" },
          stdout: "pipe",
          stderr: "inherit",
        },
      );
      const out = await new Response(proc.stdout).text();
      if ((await proc.exited) !== 0) throw new Error(`bench: --role=keys create failed: ${out}`);
      return (JSON.parse(out) as { secret: string }).secret;
    })();
    keys.set(env.databaseUrl, key);
  }
  return key;
}

/** Empties every table but the API keys, and declares and empties the service's queue and the floor's. */
export async function reset(env: BenchEnvironment) {
  const tables = await env.sql<
    { name: string }[]
  >`SELECT format('%I', tablename) AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'api_keys'`;
  await env.sql.unsafe(`TRUNCATE ${tables.map((t) => t.name).join(", ")}`);
  const connection = await amqp.connect(env.amqpUrl);
  const channel = await connection.createConfirmChannel();
  await declareTopology(channel, []);
  await channel.assertQueue(FLOOR_QUEUE, { durable: true, arguments: { "x-queue-type": "quorum" } });
  await channel.purgeQueue(QUEUE);
  await channel.purgeQueue(FLOOR_QUEUE);
  await connection.close();
}

/**
 * Subscribes one webhook endpoint to every event type, as a client would through the api (the
 * delivering role needs WEBHOOK_ALLOW_PRIVATE_NETWORKS=true and WEBHOOK_ALLOW_HTTP=true for a
 * receiver on loopback over plain http).
 */
export async function subscribe(env: BenchEnvironment, url: string) {
  const id = Bun.randomUUIDv7();
  await env.sql`
    INSERT INTO webhook_endpoints (id, url, event_types, secret, created_by, updated_by)
    VALUES (${id}, ${url}, enum_range(NULL::payout_event_type), ${benchBox.seal(newSecret(), id)}, 'bench', 'bench')`;
}

/** Stores `count` NEW payouts and publishes their ids to `queue` (confirmed), as the api would have. */
export async function enqueue(env: BenchEnvironment, queue: string, count: number) {
  const rows = await env.sql<{ id: string }[]>`
    INSERT INTO payouts (id, amount, currency, recipient_details)
    SELECT gen_random_uuid(), 100.00, 'EUR', 'DE89370400440532013000' FROM generate_series(1, ${count})
    RETURNING id`;
  const connection = await amqp.connect(env.amqpUrl);
  const channel = await connection.createConfirmChannel();
  for (const { id } of rows) {
    channel.sendToQueue(queue, Buffer.from(JSON.stringify({ id })), {
      persistent: true,
      contentType: "application/json",
    });
  }
  await channel.waitForConfirms();
  await connection.close();
  // Confirmed: out of the outbox, as the api's hand-off does (the relay would publish them again).
  await env.sql`TRUNCATE payout_outbox`;
}

/**
 * Waits until no payout is NEW or PROCESSING (a cheap probe of the status index, four times a
 * second); the rate of the completed ones from the first claim to the last completion.
 */
export async function awaitDrained(env: BenchEnvironment) {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const [{ open } = { open: true }] =
      await env.sql`SELECT EXISTS (SELECT FROM payouts WHERE status IN ('NEW', 'PROCESSING')) AS open`;
    if (!open) break;
    if (Date.now() > deadline) throw new Error("payouts still open after 10 minutes");
    await Bun.sleep(250);
  }
  const [span = { completed: 0, seconds: 1 }] = await env.sql`
    SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
           extract(epoch FROM max(processed_at) - min(claimed_at))::float AS seconds
    FROM payouts`;
  return { completed: span.completed as number, rate: Math.round(span.completed / span.seconds) };
}

/**
 * This machine runs PostgreSQL with autovacuum off (a CI setting), and TRUNCATE forgets a table's
 * statistics: without them the planner takes a batch UPDATE of 200 ids for a sequential scan of
 * the whole table, which no deployment (autovacuum on) would see. The bench stands in for
 * autovacuum's ANALYZE with the thresholds drizzle/0008_table_maintenance.sql gives the big
 * tables: at once and then every two seconds it analyzes each table changed by more than 50 rows
 * + 1% of its rows since its last analyze, until the returned function is called. (Analyzing every table every two
 * seconds, as it did before, read 30,000 pages of each 5-million-row table each time: at --scale
 * that was the bench's own load, not the service's.)
 */
export function keepAnalyzed(env: BenchEnvironment) {
  const analyzeChanged = async () => {
    const tables = await env.sql<{ name: string }[]>`
      SELECT format('%I', s.relname) AS name
      FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.n_mod_since_analyze > 50 + 0.01 * greatest(c.reltuples, 0)`;
    if (tables.length === 0) return;
    const started = performance.now();
    await env.sql.unsafe(`ANALYZE ${tables.map((t) => t.name).join(", ")}`);
    if (process.env.BENCH_LOG_ANALYZE === "1") {
      console.error(
        `[analyze ${stamp().slice(11, 16)}] ${tables.map((t) => t.name).join(", ")}: ${Math.round(performance.now() - started)} ms`,
      );
    }
  };
  let running = analyzeChanged();
  const timer = setInterval(() => {
    running = running.then(analyzeChanged);
  }, 2000);
  return async () => {
    clearInterval(timer);
    await running;
  };
}

export async function machine(env: BenchEnvironment) {
  const pgVersion = (await env.sql`SHOW server_version`)[0]?.server_version;
  return `${availableParallelism()} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}, PostgreSQL ${pgVersion}`;
}

export const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
export const stamp = () => `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`;
