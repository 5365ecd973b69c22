// The delivery loop's two reads stay index-driven with many endpoints and a big backlog: the claim
// reads each endpoint's due deliveries from webhook_deliveries_pending_idx, a few rows each, and
// the fan-out the oldest rows of webhook_fanout from its key; neither scans or sorts a table.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type SQL, sql } from "drizzle-orm";
import { claimStatement } from "../../../src/webhooks/delivery/store";
import { resetDatabase, testDatabase } from "../../kit/db";

const database = testDatabase();

beforeAll(async () => {
  await resetDatabase(database);
  // 500 endpoints; two with a backlog of 20,000 due deliveries each, the others 20 each; as many
  // events; 2,000 events waiting for their fan-out.
  await database.db.execute(sql`
    INSERT INTO webhook_endpoints (id, url, event_types, secret, created_at, created_by, updated_by)
    SELECT md5(i::text)::uuid, 'http://127.0.0.1:9/hook', enum_range(NULL::payout_event_type), 'whsec_x', now() - interval '1 day', 'test', 'test'
    FROM generate_series(1, 500) AS i`);
  await database.db.execute(sql`
    WITH events AS (
      INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
      SELECT uuid_v7(at), 'payout.created', gen_random_uuid(), NULL, date_trunc('milliseconds', at), '{}'::json
      FROM generate_series(1, 50000) AS i, LATERAL (SELECT now() - make_interval(secs => i / 10.0) AS at) AS t
      RETURNING id, created_at)
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, next_attempt_at, created_at)
    SELECT gen_random_uuid(), md5((CASE WHEN n <= 40000 THEN 1 + n % 2 ELSE 3 + n % 498 END)::text)::uuid,
           id, 'payout.created', created_at, created_at
    FROM (SELECT id, created_at, row_number() OVER () AS n FROM events) AS numbered`);
  await database.db.execute(sql`
    INSERT INTO webhook_fanout (event_id, event_type, created_at)
    SELECT uuid_v7(now()), 'payout.created', date_trunc('milliseconds', now()) FROM generate_series(1, 2000)`);
  await database.db.execute(sql`ANALYZE webhook_endpoints, webhook_deliveries, payout_events, webhook_fanout`);
}, 120_000);
afterAll(async () => {
  await resetDatabase(database);
  await database.close();
});

type PlanNode = { "Node Type": string; "Relation Name"?: string; "Index Name"?: string; Plans?: PlanNode[] };
const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];

async function plan(statement: SQL): Promise<PlanNode[]> {
  const [row] = (await database.db.execute(sql`EXPLAIN (FORMAT JSON) ${statement}`)) as unknown as {
    "QUERY PLAN": { Plan: PlanNode }[];
  }[];
  return nodes(row?.["QUERY PLAN"][0]?.Plan as PlanNode);
}

/** The nodes that read `relation` (the UPDATE's own ModifyTable node writes it). */
const scansOf = (all: PlanNode[], relation: string) =>
  all.filter((n) => n["Relation Name"] === relation && n["Node Type"] !== "ModifyTable");

test("the claim reads the due deliveries of each endpoint from the pending index, with no scan or sort of a big table", async () => {
  const inFlight = new Map([[md5uuid(1), 3]]);
  const all = await plan(claimStatement(32, 8, inFlight, 25));
  const deliveries = scansOf(all, "webhook_deliveries");
  expect(deliveries.length).toBeGreaterThan(0);
  for (const scan of deliveries) {
    expect(scan["Node Type"]).toMatch(/^Index (Only )?Scan$/);
    expect(["webhook_deliveries_pending_idx", "webhook_deliveries_pkey"]).toContain(scan["Index Name"] as string);
  }
  expect(deliveries.map((n) => n["Index Name"])).toContain("webhook_deliveries_pending_idx");
  for (const scan of scansOf(all, "payout_events")) expect(scan["Node Type"]).toMatch(/^Index (Only )?Scan$/);
  // Only the endpoints' small result is sorted (the order in which endpoints are served).
  const sorts = all.filter((n) => n["Node Type"] === "Sort");
  expect(sorts.length).toBeLessThanOrEqual(1);
});

test("the fan-out takes the oldest waiting events from the key of webhook_fanout", async () => {
  // The fan-out's claim, as fanOut runs it.
  const all = await plan(sql`
    SELECT event_id FROM webhook_fanout ORDER BY event_id LIMIT 10 FOR UPDATE SKIP LOCKED`);
  const scans = scansOf(all, "webhook_fanout");
  expect(scans.map((n) => [n["Node Type"], n["Index Name"]])).toEqual([["Index Scan", "webhook_fanout_pkey"]]);
  expect(all.map((n) => n["Node Type"])).not.toContain("Sort");
});

test("the claim takes a few milliseconds with 500 endpoints and backlogs of 20,000", async () => {
  // Not a timing assertion: EXPLAIN ANALYZE shows the rows each scan read, which must be a few per
  // endpoint, not the backlog.
  const [row] = (await database.db.execute(
    sql`EXPLAIN (ANALYZE, FORMAT JSON) ${claimStatement(32, 8, new Map(), 25)}`,
  )) as unknown as { "QUERY PLAN": { Plan: PlanNode & { "Actual Rows": number }; "Execution Time": number }[] }[];
  const root = row?.["QUERY PLAN"][0];
  const read = nodes(root?.Plan as PlanNode) as (PlanNode & { "Actual Rows": number; "Actual Loops": number })[];
  const fromPending = read.filter((n) => n["Index Name"] === "webhook_deliveries_pending_idx");
  const rowsRead = fromPending.reduce((sum, n) => sum + n["Actual Rows"] * n["Actual Loops"], 0);
  console.log(`claim with 500 endpoints: ${root?.["Execution Time"]} ms, ${rowsRead} rows read from the pending index`);
  // One probe per endpoint (500) and the claimed rows (32): not the 50,000 pending.
  expect(rowsRead).toBeLessThan(2000);
});

function md5uuid(i: number) {
  const hex = new Bun.CryptoHasher("md5").update(String(i)).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
