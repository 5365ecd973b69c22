// The contract: the cost of an events page must not grow with how deep it is. Every page, of all
// events or of one payout's, must be read from an index in order, stopping at the limit.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { eventsPageQuery, firstIdAt, historyPageQuery } from "../../../src/events/service";
import type { EventListQuery } from "../../../src/events/validation";
import { databaseUrl, resetDatabase, testDatabase } from "../../kit/db";

const database = testDatabase();
const raw = postgres(databaseUrl, { max: 1, onnotice: () => {} });
const PAYOUT = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";

beforeAll(async () => {
  await resetDatabase(database);
  // 20,000 events over five and a half hours, 500 of them one payout's; one payout.deleted in 500.
  await database.db.execute(sql`
    INSERT INTO payout_events (id, type, payout_id, attempt, created_at, data)
    SELECT uuid_v7(at), (CASE WHEN i % 500 = 0 THEN 'payout.deleted' ELSE 'payout.completed' END)::payout_event_type,
           CASE WHEN i % 40 = 7 THEN ${PAYOUT}::uuid ELSE md5((i % 2000)::text)::uuid END,
           1, date_trunc('milliseconds', at), '{}'::json
    FROM generate_series(1, 20000) AS i, LATERAL (SELECT now() - make_interval(secs => i) AS at) AS t`);
  await database.db.execute(sql`ANALYZE payout_events`);
}, 60_000);
afterAll(async () => {
  await resetDatabase(database);
  await raw.end();
  await database.close();
});

type PlanNode = { "Node Type": string; "Index Name"?: string; Plans?: PlanNode[] };

async function plan(query: { toSQL(): { sql: string; params: unknown[] } }): Promise<PlanNode> {
  const { sql: text, params } = query.toSQL();
  const [row] = await raw.unsafe(`EXPLAIN (FORMAT JSON) ${text}`, params as never[]);
  return (row?.["QUERY PLAN"] as { Plan: PlanNode }[])[0]?.Plan as PlanNode;
}

const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
const deepAt = new Date(Date.now() - 15_000_000);
const deep = { createdAt: deepAt, id: firstIdAt(deepAt) };

const expectIndexRead = (root: PlanNode, index?: string) => {
  const all = nodes(root);
  expect(all[0]?.["Node Type"]).toBe("Limit");
  expect(all[1]?.["Node Type"]).toMatch(/^Index (Only )?Scan$/);
  if (index) expect(all[1]?.["Index Name"]).toBe(index);
  expect(all.map((n) => n["Node Type"])).not.toContain("Sort");
  expect(all.map((n) => n["Node Type"])).not.toContain("Seq Scan");
};

test.each<[string, Partial<EventListQuery>]>([
  ["no filter", {}],
  ["a deep cursor", { cursor: deep }],
  ["a common type and a deep cursor", { type: "payout.completed", cursor: deep }],
  ["a payout and a deep cursor", { payoutId: PAYOUT, cursor: deep }],
  [
    "a created_after/created_before window",
    { createdAfter: new Date(Date.now() - 9_000_000), createdBefore: new Date(Date.now() - 1_000_000) },
  ],
])("a page of all events with %s is read from an index in order, with no sort", async (_, filters) => {
  expectIndexRead(await plan(eventsPageQuery(database.db, { limit: 50, ...filters })));
});

test("a page of a rare type is read from the type index, however deep the cursor", async () => {
  expectIndexRead(
    await plan(eventsPageQuery(database.db, { limit: 50, type: "payout.deleted", cursor: deep })),
    "payout_events_type_idx",
  );
});

test("a page of a payout's history is read from the payout index, however deep the cursor", async () => {
  expectIndexRead(
    await plan(historyPageQuery(database.db, PAYOUT, { limit: 50, cursor: deep })),
    "payout_events_payout_idx",
  );
});
