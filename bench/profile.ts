// `bun run bench -- --profile`: where the time goes. Runs the create load against the api role and
// the drain against the processing code under `bun --cpu-prof`, and prints for each the busiest
// functions and packages (self time) and PostgreSQL's busiest statements (pg_stat_statements,
// when the server preloads it). Profiling slows what it measures: these runs are not recorded as
// results, only read for where the time goes (bench/RESULTS.md).
//
// Bun profiles a process's main thread only, so the drain is profiled in role `all`, whose main
// thread runs the same consumer, processor and gateway code as a worker thread.
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { QUEUE } from "../src/queue/rabbitmq/topology";
import {
  awaitDrained,
  benchEnvironment,
  benchKey,
  CONNECTIONS,
  cpuSeconds,
  enqueue,
  keepAnalyzed,
  load,
  randomPort,
  reset,
  roleEnv,
  seconds,
  spawnChild,
  stop,
  subscribe,
  waitReady,
} from "./lib";

const DRAIN_COUNT = 50_000;
const TOP = 25;

const env = await benchEnvironment("payouts_profile");
const dir = `/tmp/payouts-profile-${process.pid}`;
const [{ preloaded } = { preloaded: false }] = await env.sql`
  SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%' AS preloaded`;
if (preloaded) await env.sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;

type Frame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: Frame; hitCount?: number; children?: number[] };

/** What a package or file is called in the summary. */
function owner({ url, functionName }: Frame): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const own = /\/((?:src|bench)\/.+)$/.exec(url);
  return own ? (own[1] as string) : url;
}

/**
 * Self time by function and by owner, as shares of the samples that were not idle. Time in native
 * code (the runtime's own functions) is also charged to the nearest JavaScript caller outside the
 * runtime, which says whose work it was.
 */
function summarize(file: string) {
  const nodes: ProfileNode[] = JSON.parse(readFileSync(file, "utf8")).nodes;
  const parent = new Map<number, ProfileNode>();
  for (const node of nodes) for (const child of node.children ?? []) parent.set(child, node);
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  const nativeByCaller = new Map<string, number>();
  const add = (m: Map<string, number>, key: string, n: number) => m.set(key, (m.get(key) ?? 0) + n);
  const name = (f: Frame) => `${f.functionName || "(anonymous)"} ${owner(f)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
  let busy = 0;
  for (const node of nodes) {
    const { callFrame, hitCount = 0 } = node;
    if (hitCount === 0 || callFrame.functionName === "(idle)") continue;
    busy += hitCount;
    add(byFunction, name(callFrame), hitCount);
    add(byOwner, owner(callFrame), hitCount);
    if (owner(callFrame) === "(native)") {
      let caller = parent.get(node.id);
      while (caller && (!caller.callFrame.url || /^(node|internal|bun):/.test(caller.callFrame.url))) {
        caller = parent.get(caller.id);
      }
      add(nativeByCaller, caller ? name(caller.callFrame) : "(no JavaScript caller: the runtime's own work)", hitCount);
    }
  }
  const top = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([k, v]) => `  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`)
      .join("\n");
  return (
    `busy samples: ${busy}\nby package or file:\n${top(byOwner)}\nby function:\n${top(byFunction)}\n` +
    `native time by its nearest caller in the service or a package:\n${top(nativeByCaller)}`
  );
}

async function statements() {
  if (!preloaded) return "pg_stat_statements: not in shared_preload_libraries";
  const rows = await env.sql`
    SELECT calls, round(total_exec_time)::int AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms, rows,
           left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = ${env.name})
    ORDER BY total_exec_time DESC LIMIT 10`;
  return `pg_stat_statements (this database), by total time:\n${rows
    .map((r) => `  ${r.total_ms} ms  ${r.calls} calls  mean ${r.mean_ms} ms  ${r.rows} rows  ${r.query}`)
    .join("\n")}`;
}

async function resetStatements() {
  if (preloaded) {
    await env.sql`SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = ${env.name}), 0)`;
  }
}

/** Runs `role` under the profiler until `work` is done; prints its profile and the statements. */
async function profiled(
  label: string,
  role: string,
  extra: Record<string, string>,
  work: (port: number) => Promise<string>,
) {
  const analyzed = keepAnalyzed(env);
  await resetStatements();
  const port = randomPort();
  const proc = spawnChild(["bun", "--cpu-prof", `--cpu-prof-dir=${dir}/${label}`, "src/main.ts", `--role=${role}`], {
    env: roleEnv(env, port, extra),
    stdout: "ignore",
    stderr: "inherit",
  });
  const outcome = await work(port);
  const cpu = cpuSeconds(proc.pid);
  await stop(proc);
  await analyzed();
  const [file] = readdirSync(`${dir}/${label}`);
  console.log(`\n## ${label}: ${outcome}, process CPU ${cpu.toFixed(1)} s\n`);
  console.log(summarize(`${dir}/${label}/${file}`));
  console.log(await statements());
}

try {
  await reset(env);
  // As in `bun run bench`: one endpoint subscribed to every event, so each create records its delivery.
  await subscribe(env, "http://127.0.0.1:9/webhooks");
  await profiled("create", "api", {}, async (port) => {
    await waitReady(`http://127.0.0.1:${port}/health/ready`);
    const result = await load(
      `http://127.0.0.1:${port}/api/payouts/`,
      CONNECTIONS,
      seconds,
      "POST",
      await benchKey(env),
    );
    return `${result.requests} creates, ${result.rps}/s, p99 ${result.p99_ms} ms`;
  });
  await reset(env);
  await enqueue(env, QUEUE, DRAIN_COUNT);
  await profiled("drain", "all", { GATEWAY_LATENCY_MS: "0" }, async () => {
    const drained = await awaitDrained(env);
    return `${drained.completed} completed, ${drained.rate}/s`;
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
  await env.drop();
}
