// src/db/sql/ is where a reader finds the current definition of every PostgreSQL function and
// trigger, which the migrations only hold as a history of replacements. This holds the two
// together: once migrated, the database has exactly the definitions those files create, no more
// and no fewer, so a migration that changes a function without its file (or a file changed
// without a migration) fails here.
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { databaseUrl } from "../../kit/db";

const db = postgres(databaseUrl, { max: 1, onnotice: () => {} });
afterAll(() => db.end());

const folder = join(import.meta.dir, "..", "..", "..", "src", "db", "sql");
const files = readdirSync(folder).filter((name) => name.endsWith(".sql"));

type Sql = postgres.Sql | postgres.TransactionSql;

/** The database's own functions (not an extension's) and triggers, as PostgreSQL prints them. */
async function definitions(sql: Sql) {
  const functions = await sql<{ signature: string; definition: string }[]>`
    SELECT p.oid::regprocedure::text AS signature, pg_get_functiondef(p.oid) AS definition
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1`;
  const triggers = await sql<{ name: string; target: string; definition: string }[]>`
    SELECT tgname::text AS name, tgrelid::regclass::text AS target, pg_get_triggerdef(oid) AS definition
    FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`;
  return {
    functions: Object.fromEntries(functions.map((f) => [f.signature, f.definition])),
    triggers: Object.fromEntries(triggers.map((t) => [`${t.name} on ${t.target}`, t.definition])),
  };
}

/** Rolls the transaction back once `body` has what it wanted. */
class RolledBack extends Error {}

test("the migrated database holds exactly the functions and triggers that src/db/sql/ defines", async () => {
  const migrated = await definitions(db);
  expect(Object.keys(migrated.functions).length).toBeGreaterThan(0);
  expect(Object.keys(migrated.triggers).length).toBeGreaterThan(0);

  let fromFiles: typeof migrated | undefined;
  await db
    .begin(async (tx) => {
      // Everything the migrations defined goes (DDL is transactional: the rollback restores it),
      // then only the files define it again; their bodies may call functions another file defines.
      for (const trigger of await tx`SELECT tgname::text AS name, tgrelid::regclass::text AS target
                                     FROM pg_trigger WHERE NOT tgisinternal`) {
        await tx.unsafe(`DROP TRIGGER "${trigger.name}" ON ${trigger.target}`);
      }
      for (const signature of Object.keys(migrated.functions)) await tx.unsafe(`DROP FUNCTION ${signature}`);
      await tx`SET LOCAL check_function_bodies = off`;
      for (const file of files) {
        await tx.unsafe(readFileSync(join(folder, file), "utf8")).simple();
      }
      fromFiles = await definitions(tx);
      throw new RolledBack();
    })
    .catch((error) => {
      if (!(error instanceof RolledBack)) throw error;
    });

  expect(fromFiles).toEqual(migrated);
});
