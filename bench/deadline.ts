// How often creates reach their deadline on this machine while PostgreSQL is healthy (issue 17,
// CREATE_DEADLINE_MS): the api and worker roles (default settings: the worker pays every payout
// created, on every core) and PostgreSQL on one machine, 64 clients creating back to back for
// BENCH_SECONDS (default 30) per deadline. Every answer other than 201 (a 503 or 504) counts.
// Usage: bun bench/deadline.ts [deadline_ms ...] (default: 800 2000). Loopback only.
import {
  benchEnvironment,
  benchKey,
  CONNECTIONS,
  load,
  randomPort,
  reset,
  roleEnv,
  spawnChild,
  stop,
  waitReady,
} from "./lib";

const deadlines = Bun.argv.slice(2).map(Number);
const secs = Number(process.env.BENCH_SECONDS ?? 30);
const env = await benchEnvironment("payouts_bench_deadline");
try {
  for (const deadline of deadlines.length > 0 ? deadlines : [800, 2000]) {
    await reset(env);
    const port = randomPort();
    const extra = { CREATE_DEADLINE_MS: String(deadline), LOG_LEVEL: "warn" };
    const api = spawnChild(["bun", "src/main.ts", "--role=api"], {
      env: roleEnv(env, port, extra),
      stdout: "ignore",
      stderr: "inherit",
    });
    const worker = spawnChild(["bun", "src/main.ts", "--role=worker"], {
      env: roleEnv(env, port + 1, extra),
      stdout: "ignore",
      stderr: "inherit",
    });
    await waitReady(`http://127.0.0.1:${port}/health/ready`);
    const result = await load(`http://127.0.0.1:${port}/api/payouts/`, CONNECTIONS, secs, "POST", await benchKey(env));
    const [paid] = await env.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM payouts WHERE status = 'COMPLETED'`;
    await stop(api);
    await stop(worker);
    console.log(
      JSON.stringify({
        create_deadline_ms: deadline,
        ...result,
        refused_pct: Number(((100 * result.errors) / result.requests).toFixed(3)),
        completed_meanwhile: paid?.n,
      }),
    );
  }
} finally {
  await env.drop();
}
