// The migrator: idempotent, and safe when many migrators (init containers) start at once.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { migratePostgres, migrationsFolder } from "../../../src/db/migrate";
import { databaseUrl, scratchDatabase } from "../../kit/db";

const journal = JSON.parse(readFileSync(join(migrationsFolder(), "meta", "_journal.json"), "utf8")) as {
  entries: { when: number }[];
};

/** What a database's migrations and schema look like: enough to tell "the same" from "not". */
async function state(url: string) {
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const migrations =
      await db`SELECT hash, created_at::text AS created_at FROM drizzle.__drizzle_migrations ORDER BY id`;
    const tables = await db`
      SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`;
    const triggers = await db`
      SELECT tgname::text AS name FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`;
    return {
      migrations: migrations.map((m) => ({ ...m })),
      tables: tables.map((t) => t.name),
      triggers: triggers.map((t) => t.name),
    };
  } finally {
    await db.end();
  }
}

const expectedSchema = {
  tables: [
    "api_keys",
    "idempotency_keys",
    "payout_events",
    "payout_outbox",
    "payouts",
    "simulated_gateway_payments",
    "webhook_deliveries",
    "webhook_endpoints",
    "webhook_fanout",
  ],
  triggers: [
    "payout_events_append_only",
    "payouts_commit_by_deadline",
    "payouts_events_on_delete",
    "payouts_events_on_insert",
    "payouts_events_on_update",
    "payouts_keep_moving_money",
    "payouts_outbox_on_insert",
    "payouts_status_machine",
  ],
};

test("running the migrator again on a migrated database changes nothing", async () => {
  const url = databaseUrl;
  const before = await state(url);
  expect(before.migrations).toHaveLength(journal.entries.length);
  await migratePostgres(url);
  await migratePostgres(url);
  expect(await state(url)).toEqual(before);
});

test(
  "two migrators started at once on an empty database both succeed and apply each migration once",
  async () => {
    const scratch = await scratchDatabase("payouts_migrate");
    try {
      const results = await Promise.allSettled([migratePostgres(scratch.url), migratePostgres(scratch.url)]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
      const after = await state(scratch.url);
      expect(after.migrations).toHaveLength(journal.entries.length);
      expect(after.migrations.map((m) => Number(m.created_at))).toEqual(journal.entries.map((e) => e.when));
      expect(after).toMatchObject(expectedSchema);
    } finally {
      await scratch.drop();
    }
  },
  { timeout: 30_000 },
);
