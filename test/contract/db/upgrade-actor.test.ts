// Upgrading a database that holds events and Idempotency-Keys to drizzle/0013: the events appended
// before it keep actor NULL (nothing recorded who made them; the trail is never rewritten), the
// keys stored before it belong to the nil UUID, which no API key has, and the trigger names
// actors from then on.
import { expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { migratePostgres, migrationsFolder } from "../../../src/db/migrate";
import { scratchDatabase } from "../../kit/db";

const NIL = "00000000-0000-0000-0000-000000000000";

/** The migrations up to and including `tag`, in a folder of their own. */
function migrationsUpTo(tag: string): { folder: string; remove: () => void } {
  const folder = mkdtempSync(join(tmpdir(), "payouts-migrations-"));
  cpSync(migrationsFolder(), folder, { recursive: true });
  const journalPath = join(folder, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8"));
  const last = journal.entries.findIndex((e: { tag: string }) => e.tag === tag);
  if (last < 0) throw new Error(`no migration ${tag}`);
  journal.entries = journal.entries.slice(0, last + 1);
  writeFileSync(journalPath, JSON.stringify(journal));
  return { folder, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

test(
  "events before the upgrade keep actor NULL, keys before it go to the nil UUID; changes after it name their actor",
  async () => {
    const scratch = await scratchDatabase("payouts_upgrade_actor");
    const before = migrationsUpTo("0012_api_keys");
    const client = postgres(scratch.url, { max: 1, onnotice: () => {} });
    try {
      await migrate(drizzle(client), { migrationsFolder: before.folder });
      const id = Bun.randomUUIDv7();
      await client`INSERT INTO payouts (id, amount, currency, recipient_details) VALUES (${id}, 5, 'EUR', 'x')`;
      await client`INSERT INTO idempotency_keys (key, fingerprint, payout_id, response_status, response_body)
                   VALUES ('before-upgrade', 'f', ${id}, 201, '{}')`;

      await migratePostgres(scratch.url);

      await client`UPDATE payouts SET comment = 'after' WHERE id = ${id}`;
      const events = await client`SELECT type::text, actor FROM payout_events WHERE payout_id = ${id} ORDER BY id`;
      expect([...events]).toEqual([
        { type: "payout.created", actor: null },
        { type: "payout.updated", actor: "system" },
      ]);
      const keys = await client`SELECT api_key_id::text, key FROM idempotency_keys`;
      expect([...keys]).toEqual([{ api_key_id: NIL, key: "before-upgrade" }]);
      const [primaryKey] = await client`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
                                        WHERE conrelid = 'idempotency_keys'::regclass AND contype = 'p'`;
      expect(primaryKey?.def).toBe("PRIMARY KEY (api_key_id, key)");
      // No default is left behind: a row that does not name its API key is refused.
      const refused =
        await client`INSERT INTO idempotency_keys (key, fingerprint, payout_id, response_status, response_body)
                                   VALUES ('no-owner', 'f', ${id}, 201, '{}')`.catch((error) => error);
      expect(refused).toMatchObject({ code: "23502" });
    } finally {
      await client.end();
      before.remove();
      await scratch.drop();
    }
  },
  { timeout: 30_000 },
);
