// The run's PostgreSQL database, made for the tests that ask for one: the first module to import
// this one makes it (bun runs every test file of a `bun test` in one process with one module
// cache, so a run makes one database however many files import it), migrated, and named in
// DATABASE_URL for the processes the tests spawn. Tests that do not import it need no PostgreSQL.
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { connectPostgres, type Database } from "../../src/db/client";
import { migratePostgres } from "../../src/db/migrate";
import { drop, dropAtExit } from "./reaper";

const adminUrl = process.env.TEST_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Makes an empty database `<prefix>_<pid>_<time>`, dropped when the run ends if not before. */
async function createDatabase(prefix: string): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  dropAtExit({ database: name });
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } catch (error) {
    throw new Error(
      `the tests could not make their database on TEST_ADMIN_DATABASE_URL (${adminUrl}): ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

async function createRunDatabase(): Promise<string> {
  const { name, url } = await createDatabase("payouts_test");
  try {
    await migratePostgres(url);
  } catch (error) {
    await drop({ database: name });
    throw new Error(`the tests' database ${name} could not be migrated, and was dropped: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return url;
}

export const databaseUrl = await createRunDatabase();
process.env.DATABASE_URL = databaseUrl;

/** A pool on the run's database. */
export function testDatabase(poolSize = 5): Database {
  return connectPostgres(databaseUrl, poolSize, "payouts-test");
}

/** Empties every table: for test files that count rows. */
export async function resetDatabase(database: Database): Promise<void> {
  await database.db.execute(
    sql`TRUNCATE payouts, payout_outbox, idempotency_keys, simulated_gateway_payments, payout_events, webhook_endpoints, webhook_deliveries, webhook_fanout`,
  );
}

/** An empty database of a test's own (not migrated); `drop` removes it. */
export async function scratchDatabase(prefix: string) {
  const { name, url } = await createDatabase(prefix);
  return { url, drop: () => drop({ database: name }) };
}
