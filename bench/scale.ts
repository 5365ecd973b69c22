// `bun run bench -- --scale`: whether the service stays as fast when its tables hold 5 million
// payouts (issue 12). Measures the api on a nearly empty table (10,000 payouts), preloads
// BENCH_SCALE_ROWS payouts (default 5,000,000; mostly COMPLETED, two years of created_at, three
// currencies; their audit trail too when payout_events exists) and measures again:
// - create: POST /api/payouts/ at 64 connections, and the drain of what it created by the worker;
// - list: p99 of GET /api/payouts/ at 4 connections, first page and a page 100,000 rows deep (or
//   half the rows the filter finds, when fewer), unfiltered and by each filter;
// - the relay's query (as src/payouts/processing/outbox.ts builds it) under EXPLAIN (ANALYZE, BUFFERS);
// - every list page of 1 to 200 rows, each filter, first and deep, planned without a Sort;
// - table and index sizes, HOT updates and dead rows from pg_stat_user_tables.
// Appends the results to bench/RESULTS.md; drops its database at the end (keeps it with
// BENCH_SCALE_REUSE=1, whose next run measures the same preload).
import { appendFileSync } from "node:fs";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { loadConfig } from "../src/config";
import { connectPostgres } from "../src/db/client";
import * as schema from "../src/db/schema";
import { PAGE_LIMIT_MAX } from "../src/lib/lists";
import { createLogger } from "../src/lib/log";
import { createOutbox } from "../src/payouts/processing/outbox";
import { pageQuery } from "../src/payouts/service";
import { nextCursor, validateListQuery } from "../src/payouts/validation";
import { outboxOptions } from "../src/roles/options";
import {
  benchEnvironment,
  benchKey,
  CONNECTIONS,
  keepAnalyzed,
  load,
  machine,
  randomPort,
  ratio,
  reset,
  roleEnv,
  seconds,
  spawnChild,
  stamp,
  stop,
  waitReady,
} from "./lib";

const SMALL_ROWS = 10_000;
const ROWS = Number(process.env.BENCH_SCALE_ROWS ?? 5_000_000);
const CHUNK = 500_000;
const DEPTH = 100_000;
const LIST_CONNECTIONS = 4;
const LIST_SECONDS = 3;

const REUSE = process.env.BENCH_SCALE_REUSE === "1";
/** A database the measurements run on, with the bench's own connections to it. */
async function target(name: string, reuse: boolean) {
  const env = await benchEnvironment(name, reuse);
  return { env, sql: env.sql, database: connectPostgres(env.databaseUrl, 2, "bench") };
}
type Target = Awaited<ReturnType<typeof target>>;

// The preload in a database of its own, kept by BENCH_SCALE_REUSE=1 for the next run; the small
// table in another, so that measuring it never empties the preload.
const largeDb = await target("payouts_scale", REUSE);
const smallDb = await target("payouts_scale_small", false);
const log = (line: string) => console.log(`[scale ${new Date().toISOString().slice(11, 19)}] ${line}`);

const processEnv = (t: Target, port: number, extra: Record<string, string> = {}) => roleEnv(t.env, port, extra);

/**
 * Appends payouts i = from..to of `total`, spread evenly over the two years before the last hour,
 * oldest first (the heap in created_at order, as a live table's is), with UUIDv7 ids from their
 * created_at. 94% COMPLETED, 3% FAILED, 3% CANCELLED; the newest 200 NEW (published, in flight).
 * RUB 60%, USD 25%, EUR 15%.
 */
async function preload(t: Target, from: number, to: number, total: number, events: boolean) {
  const insert = t.sql`
    INSERT INTO payouts (id, amount, currency, recipient_details, comment, status, failure_reason, attempts,
                         claimed_at, published_at, created_at, updated_at, processed_at)
    SELECT (lpad(to_hex((extract(epoch FROM c) * 1000)::bigint), 12, '0') || '7' || substr(r, 1, 3) || '8'
            || substr(r, 4, 15))::uuid,
           round((10 + random() * 99990)::numeric, 2),
           (CASE WHEN k < 0.60 THEN 'RUB' WHEN k < 0.85 THEN 'USD' ELSE 'EUR' END)::currency,
           '40817810' || lpad(i::text, 12, '0') || ', BIC 044525225, Recipient ' || i,
           CASE WHEN i % 4 = 0 THEN 'invoice ' || i ELSE '' END,
           s::payout_status,
           CASE WHEN s = 'FAILED' THEN 'gateway failed 5 times; last error: simulated gateway: temporarily unavailable' END,
           CASE s WHEN 'COMPLETED' THEN 1 WHEN 'FAILED' THEN 5 ELSE 0 END,
           CASE WHEN s IN ('COMPLETED', 'FAILED') THEN c + interval '40 ms' END,
           c + interval '5 ms',
           c,
           CASE WHEN s IN ('COMPLETED', 'FAILED') THEN c + interval '600 ms' ELSE c END,
           CASE WHEN s IN ('COMPLETED', 'FAILED') THEN c + interval '600 ms' END
    FROM (
      SELECT *, CASE WHEN i > ${total} - 200 THEN 'NEW' WHEN x < 0.03 THEN 'FAILED' WHEN x < 0.06 THEN 'CANCELLED'
                     ELSE 'COMPLETED' END AS s
      FROM (
        SELECT i, md5(random()::text) AS r, random() AS k, random() AS x,
               now() - interval '1 hour' - (${total} - i) * (interval '730 days' / ${total}) AS c
        FROM generate_series(${from}::int, ${to}::int) AS i
      ) AS g
    ) AS p`;
  if (!events) return insert;
  // The events each payout's history implies (created, then processing and its outcome, or
  // cancelled), written with it, each with the payout as it was right after that change: a created
  // event holds the NEW payout, as the trigger writes it (and is as short as the events the
  // service appends; see fill() for why the sizes matter). The ROW()s list the payouts columns in
  // the table's order.
  return t.sql`
    WITH p AS (${insert} RETURNING *)
    INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
    SELECT (lpad(to_hex((extract(epoch FROM e.at) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid,
           e.type::payout_event_type, p.id, e.attempt, e.at, e.data
    FROM p, LATERAL (VALUES
        ('payout.created', p.created_at, NULL::smallint,
         payout_json(ROW(p.id, p.amount, p.currency, p.recipient_details, p.comment, 'NEW', NULL, 0, NULL,
                         p.published_at, p.created_at, p.created_at, NULL)::payouts)),
        (CASE WHEN p.status IN ('COMPLETED', 'FAILED') THEN 'payout.processing' END, p.claimed_at, p.attempts,
         payout_json(ROW(p.id, p.amount, p.currency, p.recipient_details, p.comment, 'PROCESSING', NULL,
                         p.attempts, p.claimed_at, p.published_at, p.created_at, p.claimed_at, NULL)::payouts)),
        (CASE p.status WHEN 'COMPLETED' THEN 'payout.completed' WHEN 'FAILED' THEN 'payout.failed'
                       WHEN 'CANCELLED' THEN 'payout.cancelled' END, p.updated_at,
         CASE WHEN p.status IN ('COMPLETED', 'FAILED') THEN p.attempts END,
         payout_json(ROW(p.*)::payouts))
      ) AS e(type, at, attempt, data)
    WHERE e.type IS NOT NULL`;
}

/** Whether the audit trail (issue 10) has landed in the shape the preload knows how to fill. */
async function eventsTable(t: Target): Promise<boolean> {
  const columns = await t.sql<{ column_name: string }[]>`
    SELECT column_name FROM information_schema.columns WHERE table_name = 'payout_events' ORDER BY column_name`;
  const [json] = await t.sql`SELECT to_regprocedure('payout_json(payouts)') IS NOT NULL AS present`;
  return columns.map((c) => c.column_name).join(",") === "attempt,created_at,data,id,payout_id,type" && json?.present;
}

async function fill(t: Target, total: number) {
  const events = await eventsTable(t);
  // The preload writes finished histories directly: the status machine's and the audit trail's
  // triggers would refuse or duplicate them. They are back on before anything is measured.
  await t.sql`ALTER TABLE payouts DISABLE TRIGGER USER`;
  // After each chunk, VACUUM payout_events, as autovacuum would (drizzle/0008: every 1% of
  // inserts; here every tenth of the preload). A vacuum records each page's leftover space in the
  // free space map, and the next inserts that fit go there. One vacuum after the whole preload
  // recorded the gaps of all 900,000 pages at once, and the service's created events, shorter
  // than most, then went one per old page across the 7 GB table (a page read, dirtied and
  // written, and a full-page WAL image, per create: 0.79-0.83x of the small table's create rate,
  // 2026-12-02). With a vacuum per chunk the older chunks' gaps are partly used by the next
  // chunks' rows; what remains still costs the first create run (bench/RESULTS.md).
  for (let from = 1; from <= total; from += CHUNK) {
    const to = Math.min(total, from + CHUNK - 1);
    await preload(t, from, to, total, events);
    if (events) await t.sql`VACUUM payout_events`;
    log(`preloaded ${to} of ${total} payouts${events ? " and their events" : ""}`);
  }
  await t.sql`ALTER TABLE payouts ENABLE TRIGGER USER`;
  const started = performance.now();
  await t.sql`VACUUM ANALYZE`;
  const vacuumSeconds = (performance.now() - started) / 1000;
  // The preload's gigabytes of WAL and dirty pages are written out now, not during the measurement.
  await t.sql`CHECKPOINT`;
  // From here on, pg_stat_user_tables counts what the service does.
  await t.sql`SELECT pg_stat_reset()`;
  return { events, vacuumSeconds, reused: false };
}

const yearAgo = Date.now() - 365 * 86_400_000;
const FILTERS: Record<string, string> = {
  none: "",
  "status=COMPLETED": "status=COMPLETED",
  "status=FAILED": "status=FAILED",
  "status=NEW": "status=NEW",
  "currency=EUR": "currency=EUR",
  "status=FAILED&currency=USD": "status=FAILED&currency=USD",
  "a 30-day window a year ago": `created_after=${new Date(yearAgo).toISOString()}&created_before=${new Date(yearAgo + 30 * 86_400_000).toISOString()}`,
};

/** The query each filter makes, and the cursor of a page `depth` rows deep (half the rows, when fewer). */
async function pages(t: Target) {
  const result: { filter: string; query: string; deep?: string; depth: number }[] = [];
  for (const [filter, query] of Object.entries(FILTERS)) {
    const parsed = validateListQuery(new URLSearchParams(query));
    if (!parsed.ok) throw new Error(`bench: ${filter} is not a valid list query`);
    const { sql: text, params } = pageQuery(t.database.db, { ...parsed.value, limit: DEPTH * 2 }).toSQL();
    const [{ n } = { n: 0 }] = await t.sql.unsafe(`SELECT count(*)::int AS n FROM (${text}) AS p`, params as never[]);
    const depth = Math.min(DEPTH, Math.floor(n / 2));
    const [row] = depth > 0 ? await pageQuery(t.database.db, { ...parsed.value, limit: 1 }).offset(depth) : [];
    result.push({ filter, query, deep: row ? nextCursor(row, parsed.value) : undefined, depth });
  }
  return result;
}

type PlanNode = { "Node Type": string; Plans?: PlanNode[] };
const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];

/** Pages of 1 to 200 rows, each filter, first and deep: how many plans have a Sort node, and which. */
async function sortedPlans(t: Target, list: Awaited<ReturnType<typeof pages>>) {
  let plans = 0;
  const sorted: string[] = [];
  for (const { filter, query, deep } of list) {
    for (const cursor of deep ? [undefined, deep] : [undefined]) {
      // A cursor carries its list's filters: sent alone, it continues that list.
      const parsed = validateListQuery(new URLSearchParams(cursor ? `cursor=${cursor}` : query));
      if (!parsed.ok) throw new Error(`bench: ${filter} is not a valid list query`);
      const sorting: number[] = [];
      for (let limit = 1; limit <= PAGE_LIMIT_MAX; limit++) {
        const { sql: text, params } = pageQuery(t.database.db, { ...parsed.value, limit }).toSQL();
        const [row] = await t.sql.unsafe(`EXPLAIN (FORMAT JSON) ${text}`, params as never[]);
        const plan = (row?.["QUERY PLAN"] as { Plan: PlanNode }[])[0]?.Plan as PlanNode;
        plans++;
        if (nodes(plan).some((n) => n["Node Type"] === "Sort")) sorting.push(limit);
      }
      if (sorting.length > 0) {
        sorted.push(
          `${filter}, ${cursor ? "deep" : "first"} page, limit ${sorting[0]} to ${sorting.at(-1)} (${sorting.length})`,
        );
      }
    }
  }
  return { plans, sorted };
}

/** The relay's SELECTs exactly as src/payouts/processing/outbox.ts sends them, under EXPLAIN (ANALYZE, BUFFERS). */
async function explainRelay(t: Target): Promise<string> {
  const statements: { query: string; params: unknown[] }[] = [];
  const client = postgres(t.env.databaseUrl, { max: 1, onnotice: () => {}, connection: { application_name: "bench" } });
  const db = drizzle(client, { schema, logger: { logQuery: (query, params) => statements.push({ query, params }) } });
  // A publisher that refuses: should the relay find anything, its transaction rolls back.
  const publisher = {
    connected: true,
    publish: () => Promise.reject(new Error("bench: not publishing")),
    close: async () => {},
  };
  // The options the roles run with (src/roles/options.ts): their intervals are parameters of the query,
  // so other values would not change its plan.
  const outbox = createOutbox({ db, publisher, log: createLogger("error", "json") }, outboxOptions(loadConfig()));
  await outbox.relayOnce().catch(() => {});
  await client.end();
  // Its two SELECTs: the outbox's rows, then (the outbox being empty) the payouts whose message was lost.
  const selects = statements.filter((s) => /^select/i.test(s.query) && /for update/i.test(s.query));
  if (selects.length === 0) throw new Error("bench: the relay's SELECT was not seen");
  const plans: string[] = [];
  for (const select of selects) {
    // In a transaction of its own: the rows it locks are free again when it ends.
    const rows = await t.sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS) ${select.query}`, select.params as never[]);
    plans.push(
      `${select.query}\n-- params: ${JSON.stringify(select.params)}\n${rows.map((r) => r["QUERY PLAN"]).join("\n")}`,
    );
  }
  return plans.join("\n\n");
}

/** Each table and index of more than 64 kB; for a B-tree, how full its leaf pages are. */
async function sizes(t: Target) {
  await t.sql`CREATE EXTENSION IF NOT EXISTS pgstattuple`;
  return t.sql<{ name: string; kind: string; size: string; density: number | null }[]>`
    SELECT c.relname AS name, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
           pg_size_pretty(pg_relation_size(c.oid)) AS size,
           CASE WHEN c.relkind = 'i' AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
                THEN (pgstatindex(c.oid)).avg_leaf_density END AS density
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) > 65536
    ORDER BY pg_relation_size(c.oid) DESC`;
}

async function tableStats(t: Target) {
  return t.sql<{ name: string; ins: number; upd: number; hot: number; dead: number; live: number }[]>`
    SELECT relname AS name, n_tup_ins::int AS ins, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot,
           n_dead_tup::int AS dead, n_live_tup::int AS live
    FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY relname`;
}

/** The api's list p99s and create rate, then the worker's drain of what was created. */
async function measure(t: Target, label: string) {
  const analyzed = keepAnalyzed(t.env);
  const list = await pages(t);
  const port = randomPort();
  const api = spawnChild(["bun", "src/main.ts", "--role=api"], {
    env: processEnv(t, port),
    stdout: "ignore",
    stderr: "inherit",
  });
  await waitReady(`http://127.0.0.1:${port}/health/ready`);
  const base = `http://127.0.0.1:${port}/api/payouts/`;
  const key = await benchKey(t.env);
  await load(base, LIST_CONNECTIONS, LIST_SECONDS, "GET", key); // warm-up: the JIT, the pool, the cache
  const latencies: Record<string, { first: number; deep?: number; depth: number }> = {};
  for (const { filter, query, deep, depth } of list) {
    const first = await load(`${base}?${query}`, LIST_CONNECTIONS, LIST_SECONDS, "GET", key);
    const deepPage = deep
      ? await load(`${base}?cursor=${deep}`, LIST_CONNECTIONS, LIST_SECONDS, "GET", key)
      : undefined;
    if (first.errors || deepPage?.errors) throw new Error(`bench: GET ${filter} answered errors`);
    latencies[filter] = { first: first.p99_ms, deep: deepPage?.p99_ms, depth };
  }
  const plans = await sortedPlans(t, list);
  // Twice, the better one counts: on a shared machine a neighbour's burst only ever slows a run.
  const creates = [
    await load(base, CONNECTIONS, seconds, "POST", key),
    await load(base, CONNECTIONS, seconds, "POST", key),
  ];
  const create = creates.reduce((best, run) => (run.rps > best.rps ? run : best));
  await stop(api);
  log(`${label}: create ${creates.map((c) => `${c.rps}/s p99 ${c.p99_ms} ms`).join(", ")}`);

  const worker = spawnChild(["bun", "src/main.ts", "--role=worker"], {
    env: processEnv(t, randomPort(), { GATEWAY_LATENCY_MS: "0" }),
    stdout: "ignore",
    stderr: "inherit",
  });
  const drain = await drainCreated(t);
  await stop(worker);
  await analyzed();
  return { latencies, plans, create, other: creates.find((c) => c !== create)?.rps, drain };
}

/** The worker finishes what the create load made (the preload's newest are older); the rate of those alone. */
async function drainCreated(t: Target) {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const [{ open } = { open: 0 }] = await t.sql`
      SELECT count(*)::int AS open FROM payouts
      WHERE status IN ('NEW', 'PROCESSING') AND created_at > now() - interval '10 minutes'`;
    if (open === 0) break;
    if (Date.now() > deadline) throw new Error(`bench: ${open} payouts still open`);
    await Bun.sleep(100);
  }
  const [span = { completed: 0, seconds: 1 }] = await t.sql`
    SELECT count(*)::int AS completed, extract(epoch FROM max(processed_at) - min(claimed_at))::float AS seconds
    FROM payouts WHERE created_at > now() - interval '10 minutes'`;
  return { completed: span.completed as number, rate: Math.round(span.completed / span.seconds) };
}

/**
 * Takes back a preload an earlier run left behind: what that run created is removed (its
 * payouts are the ones the preload did not write), its events and ledger rows with it.
 */
async function reuse(t: Target) {
  const events = await eventsTable(t);
  await t.sql`ALTER TABLE payouts DISABLE TRIGGER USER`;
  const [{ last } = { last: new Date() }] = await t.sql`
    SELECT max(updated_at) + interval '1 second' AS last FROM payouts WHERE recipient_details LIKE '%, Recipient %'`;
  await t.sql`DELETE FROM payouts WHERE recipient_details NOT LIKE '%, Recipient %'`;
  await t.sql`ALTER TABLE payouts ENABLE TRIGGER USER`;
  if (events) {
    await t.sql`ALTER TABLE payout_events DISABLE TRIGGER USER`;
    // Event ids are UUIDv7: the first id of the instant bounds them.
    await t.sql`DELETE FROM payout_events
      WHERE id >= (lpad(to_hex((extract(epoch FROM ${last}::timestamptz) * 1000)::bigint), 12, '0') || '70008000000000000000')::uuid`;
    await t.sql`ALTER TABLE payout_events ENABLE TRIGGER USER`;
  }
  await t.sql`TRUNCATE simulated_gateway_payments, idempotency_keys`;
  const started = performance.now();
  // The deleted events too: left dead at the end of payout_events and its indexes, they made every
  // new event's index insert check the heap first (the second run on one preload measured that).
  await t.sql.unsafe(`VACUUM ANALYZE payouts${events ? ", payout_events" : ""}`);
  const vacuumSeconds = (performance.now() - started) / 1000;
  await t.sql`CHECKPOINT`;
  await t.sql`SELECT pg_stat_reset()`;
  return { events, vacuumSeconds, reused: true };
}

const measureSmall = async () => {
  await reset(smallDb.env);
  await fill(smallDb, SMALL_ROWS);
  log(`measuring on ${SMALL_ROWS} payouts`);
  return measure(smallDb, "small");
};

const measureLarge = async () => {
  const t = largeDb;
  // BENCH_SCALE_REUSE=1 measures the preload an earlier run left (preloading 5 million payouts
  // and their events takes about 25 minutes here), once what that run created is taken back.
  const reused = REUSE && ((await t.sql`SELECT count(*)::int AS n FROM payouts`)[0]?.n ?? 0) >= ROWS;
  if (!reused) await reset(t.env);
  const filled = reused ? await reuse(t) : await fill(t, ROWS);
  log(`measuring on ${ROWS} payouts (VACUUM ANALYZE after the preload: ${filled.vacuumSeconds.toFixed(1)} s)`);
  const large = await measure(t, "large");
  return {
    filled,
    large,
    stats: await tableStats(t),
    relay: await explainRelay(t),
    relations: await sizes(t),
    autovacuum: (await t.sql`SHOW autovacuum`)[0]?.autovacuum,
  };
};

try {
  const small = await measureSmall();
  const largeRun = await measureLarge();
  const { filled, large, stats, relay, relations, autovacuum } = largeRun;

  const rows = Object.keys(FILTERS).map((filter) => {
    const s = small.latencies[filter];
    const l = large.latencies[filter];
    const deep =
      l?.deep === undefined ? "n/a" : `${s?.deep ?? "n/a"} / ${l.deep} ms (${l.depth.toLocaleString("en")} deep)`;
    const worst = Math.max(ratio(l?.first ?? 0, s?.first ?? 1), l?.deep && s?.deep ? ratio(l.deep, s.deep) : 0);
    return `| ${filter} | ${s?.first} / ${l?.first} ms | ${deep} | ${worst}x | ${worst <= 1.5 ? "yes" : "no"} |`;
  });
  const createRatio = ratio(large.create.rps, small.create.rps);
  const payouts = stats.find((s) => s.name === "payouts");
  const summary =
    `scale ${ROWS} payouts: create ${large.create.rps}/s = ${createRatio}x of ${small.create.rps}/s on ${SMALL_ROWS}, ` +
    `p99 ${large.create.p99_ms} / ${small.create.p99_ms} ms | drain ${large.drain.rate}/s vs ${small.drain.rate}/s | ` +
    `list pages that sort: ${large.plans.sorted.length + small.plans.sorted.length === 0 ? "none" : [...small.plans.sorted, ...large.plans.sorted].join("; ")} | ` +
    `HOT ${payouts ? `${payouts.hot} of ${payouts.upd} updates` : "n/a"}`;
  console.log(summary);
  appendFileSync(
    "bench/RESULTS.md",
    `\n## Scale: ${stamp()}\n\nMachine: ${await machine(largeDb.env)}. Preload: ${ROWS.toLocaleString("en")} payouts` +
      `${filled.events ? " and their events" : " (no payout_events table yet)"}${filled.reused ? ", left by an earlier run (BENCH_SCALE_REUSE)" : ""}; VACUUM ANALYZE after it took ` +
      `${filled.vacuumSeconds.toFixed(1)} s.\n\n` +
      `| measure | ${SMALL_ROWS.toLocaleString("en")} payouts | ${ROWS.toLocaleString("en")} payouts | ratio | target | met |\n|---|---|---|---|---|---|\n` +
      `| create: POST at ${CONNECTIONS} connections, ${seconds} s, the better of two (the other) | ${small.create.rps}/s (${small.other}/s), p99 ${small.create.p99_ms} ms | ${large.create.rps}/s (${large.other}/s), p99 ${large.create.p99_ms} ms | ${createRatio}x | >= 0.9x | ${createRatio >= 0.9 ? "yes" : "no"} |\n` +
      `| drain of those creates (worker, latency 0) | ${small.drain.rate}/s | ${large.drain.rate}/s | ${ratio(large.drain.rate, small.drain.rate)}x | | |\n\n` +
      `GET /api/payouts/ p99 at ${LIST_CONNECTIONS} connections, ${LIST_SECONDS} s each (${SMALL_ROWS.toLocaleString("en")} / ${ROWS.toLocaleString("en")} payouts):\n\n` +
      "| filter | first page | deep page | worst ratio | within 1.5x |\n|---|---|---|---|---|\n" +
      `${rows.join("\n")}\n\n` +
      `List plans of 1 to ${PAGE_LIMIT_MAX} rows, each filter, first and deep page: ${small.plans.plans} at ` +
      `${SMALL_ROWS.toLocaleString("en")} payouts, sorting: ${small.plans.sorted.join("; ") || "none"}; ${large.plans.plans} at ` +
      `${ROWS.toLocaleString("en")}, sorting: ${large.plans.sorted.join("; ") || "none"}.\n\n` +
      `The relay's query at ${ROWS.toLocaleString("en")} payouts:\n\n\`\`\`\n${relay}\n\`\`\`\n\n` +
      "Sizes:\n\n| relation | kind | size | leaf pages full (B-tree) |\n|---|---|---|---|\n" +
      `${relations.map((r) => `| ${r.name} | ${r.kind} | ${r.size} | ${r.density === null ? "" : `${r.density}%`} |`).join("\n")}\n\n` +
      `Writes since the preload (pg_stat_user_tables; autovacuum is ${autovacuum} here):\n\n` +
      "| table | inserted | updated | HOT updated | dead rows | live rows |\n|---|---|---|---|---|---|\n" +
      `${stats.map((s) => `| ${s.name} | ${s.ins} | ${s.upd} | ${s.hot} (${s.upd ? Math.round((100 * s.hot) / s.upd) : 0}%) | ${s.dead} | ${s.live} |`).join("\n")}\n\n` +
      `Summary: ${summary}\n`,
  );
} finally {
  await largeDb.database.close();
  await smallDb.database.close();
  await smallDb.env.drop();
  // BENCH_SCALE_REUSE=1 keeps the preload for the next run (25 minutes saved); otherwise it goes.
  if (REUSE) await largeDb.sql.end();
  else await largeDb.env.drop();
}
