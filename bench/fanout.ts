// `bun run bench/fanout.ts`: a create's cost with 1 and with 500 webhook endpoints (issue 17,
// item 2). The api role alone, POST /api/payouts/ at 64 connections for BENCH_SECONDS (default
// 10), once with 1 endpoint subscribed to every event and once with 500; no worker runs, so what
// is measured is the create and what its transaction writes (one webhook_fanout row per event).
// Then a worker fans out 200 of the events the 500 endpoints' run left, and its rate is recorded. Appends
// the results to bench/RESULTS.md.
import { appendFileSync } from "node:fs";
import {
  benchEnvironment,
  benchKey,
  CONNECTIONS,
  load,
  machine,
  randomPort,
  reset,
  roleEnv,
  seconds,
  spawnChild,
  stamp,
  stop,
  waitReady,
} from "./lib";

const env = await benchEnvironment("payouts_bench_fanout");

async function endpoints(count: number) {
  await env.sql`
    INSERT INTO webhook_endpoints (id, url, event_types, secret, created_by, updated_by)
    SELECT gen_random_uuid(), 'http://127.0.0.1:9/webhooks', enum_range(NULL::payout_event_type), 'whsec_' || md5(i::text), 'bench', 'bench'
    FROM generate_series(1, ${count}) AS i`;
}

const counts = async () =>
  (
    await env.sql<{ events: number; fanout: number; deliveries: number }[]>`
      SELECT (SELECT count(*)::int FROM payout_events) AS events, (SELECT count(*)::int FROM webhook_fanout) AS fanout,
             (SELECT count(*)::int FROM webhook_deliveries) AS deliveries`
  )[0] as { events: number; fanout: number; deliveries: number };

async function createRun(count: number) {
  await reset(env);
  await endpoints(count);
  const port = randomPort();
  const api = spawnChild(["bun", "src/main.ts", "--role=api"], {
    env: roleEnv(env, port, { LOG_LEVEL: "warn" }),
    stdout: "ignore",
    stderr: "inherit",
  });
  await waitReady(`http://127.0.0.1:${port}/health/ready`);
  const result = await load(`http://127.0.0.1:${port}/api/payouts/`, CONNECTIONS, seconds, "POST", await benchKey(env));
  await stop(api);
  return { endpoints: count, ...result, ...(await counts()) };
}

const one = await createRun(1);
const many = await createRun(500);

// The fan-out of 200 of the second run's events (100,000 deliveries), by a worker; the endpoints
// disabled after the events: each still receives them, no attempt is made, only the fan-out runs.
const FANNED = 200;
await env.sql`DELETE FROM webhook_fanout WHERE event_id NOT IN (SELECT event_id FROM webhook_fanout ORDER BY event_id LIMIT ${FANNED})`;
await env.sql`UPDATE webhook_endpoints SET enabled = false, disabled_at = now()`;
const port = randomPort();
const started = performance.now();
const worker = spawnChild(["bun", "src/main.ts", "--role=worker"], {
  env: roleEnv(env, port, { LOG_LEVEL: "warn" }),
  stdout: "ignore",
  stderr: "inherit",
});
for (;;) {
  if ((await counts()).fanout === 0) break;
  await Bun.sleep(100);
}
const fanOutSeconds = (performance.now() - started) / 1000;
await stop(worker);
const after = await counts();
const host = await machine(env);
await env.drop();

const row = (r: typeof one) =>
  `| ${r.endpoints} | ${Math.round(r.rps)} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} | ${r.events} | ${r.fanout} | ${r.deliveries} |`;
const report =
  `\n## Fan-out: a create with 1 and with 500 webhook endpoints (${stamp()})\n\n` +
  `Machine: ${host}. \`bun run bench/fanout.ts\`: the api role alone, ${CONNECTIONS} connections for ${seconds} s; endpoints subscribed to every event type. Before drizzle/0011 (one delivery per endpoint in the create's transaction) the issue measured 143, 72 and 34 creates a second with 50, 200 and 500 endpoints.\n\n` +
  "| endpoints | creates/s | p50 ms | p99 ms | errors | events | fan-out rows left by the creates | deliveries written by the creates |\n" +
  "|---|---|---|---|---|---|---|---|\n" +
  `${row(one)}\n${row(many)}\n\n` +
  `500 / 1 endpoints: ${(many.rps / one.rps).toFixed(2)}x the creates a second. A worker then fanned out ${FANNED} events of the 500-endpoint run into ${after.deliveries} deliveries in ${fanOutSeconds.toFixed(1)} s (${Math.round(after.deliveries / fanOutSeconds)} deliveries a second, startup included).\n`;
appendFileSync("bench/RESULTS.md", report);
console.log(report);
process.exit(0);
