// The contract: the cost of a page must not grow with how deep it is. Each page must be read from
// an index in the requested order, stopping at the limit: no Sort node, no scan of the table.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import type { Currency, Status } from "../../../src/payouts/model";
import { pageQuery } from "../../../src/payouts/service";
import type { ListQuery } from "../../../src/payouts/validation";
import { databaseUrl, resetDatabase, testDatabase } from "../../kit/db";

const database = testDatabase();
const raw = postgres(databaseUrl, { max: 1, onnotice: () => {} });

// 20,000 payouts and their 20,000 events take more than the default 5 s on a busy machine.
beforeAll(async () => {
  await resetDatabase(database);
  await database.db.execute(sql`
    INSERT INTO payouts (id, amount, currency, recipient_details, status, failure_reason, created_at, updated_at, processed_at)
    SELECT gen_random_uuid(), 10.00, (ARRAY['RUB', 'USD', 'EUR'])[1 + i % 3]::currency, 'x',
           (CASE WHEN i % 50 = 0 THEN 'FAILED' ELSE 'COMPLETED' END)::payout_status,
           CASE WHEN i % 50 = 0 THEN 'gateway refused' END,
           now() - make_interval(secs => i), now() - make_interval(secs => i), now() - make_interval(secs => i)
    FROM generate_series(1, 20000) AS i`);
  await database.db.execute(sql`ANALYZE payouts`);
}, 60_000);
afterAll(async () => {
  await resetDatabase(database);
  await raw.end();
  await database.close();
});

type PlanNode = { "Node Type": string; "Index Name"?: string; Plans?: PlanNode[] };

async function plan(query: ListQuery): Promise<PlanNode> {
  const { sql: text, params } = pageQuery(database.db, query).toSQL();
  const [row] = await raw.unsafe(`EXPLAIN (FORMAT JSON) ${text}`, params as never[]);
  return (row?.["QUERY PLAN"] as { Plan: PlanNode }[])[0]?.Plan as PlanNode;
}

const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];

const deep = { createdAt: new Date(Date.now() - 15_000_000), id: "ffffffff-ffff-7fff-bfff-ffffffffffff" };

// Which index serves a page is the planner's choice (a common status is read as well from the
// created_at index, filtering as it goes); that some index serves it in order is the contract's.
test.each<[string, Partial<ListQuery>]>([
  ["no filter", {}],
  ["a deep cursor", { cursor: deep }],
  ["a common status and a deep cursor", { status: "COMPLETED" as Status, cursor: deep }],
  ["a currency and a deep cursor", { currency: "EUR" as Currency, cursor: deep }],
  [
    "a status, a currency and a deep cursor",
    { status: "COMPLETED" as Status, currency: "RUB" as Currency, cursor: deep },
  ],
  [
    "a created_after/created_before window",
    { createdAfter: new Date(Date.now() - 9_000_000), createdBefore: new Date(Date.now() - 1_000_000) },
  ],
])("a page with %s is read from an index in order, with no sort", async (_, filters) => {
  const types = nodes(await plan({ limit: 50, ...filters })).map((n) => n["Node Type"]);
  expect(types[0]).toBe("Limit");
  expect(types[1]).toMatch(/^Index (Only )?Scan$/);
  expect(types).not.toContain("Sort");
  expect(types).not.toContain("Seq Scan");
});

test("a page of a rare status is read from the status index, however deep the cursor", async () => {
  const [limit, index] = nodes(await plan({ limit: 50, status: "FAILED", cursor: deep }));
  expect(limit?.["Node Type"]).toBe("Limit");
  expect(index?.["Node Type"]).toMatch(/^Index (Only )?Scan$/);
  expect(index?.["Index Name"]).toBe("payouts_status_created_idx");
});
