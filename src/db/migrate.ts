import { dirname, join } from "node:path";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { compiledBinary } from "../binary";
import type { Db } from "./client";

/**
 * The drizzle/ folder: beside the compiled binary when running as one (the Docker image ships it
 * there), else at the project's root.
 */
export function migrationsFolder(): string {
  return compiledBinary ? join(dirname(process.execPath), "drizzle") : join(import.meta.dir, "..", "..", "drizzle");
}

// Any constant works; it only has to be the same for every migrator of this database.
const MIGRATION_LOCK = 7_250_001;

/**
 * Applies the pending migrations on a connection of its own, under a session advisory lock: a
 * second migrator waits, then finds nothing to do. Safe to run from many init containers at once.
 */
export async function migratePostgres(url: string): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(drizzle(client), { migrationsFolder: migrationsFolder() });
  } finally {
    await client.end({ timeout: 5 });
  }
}

export async function migratePglite(db: Db): Promise<void> {
  const { migrate: migrateLite } = await import("drizzle-orm/pglite/migrator");
  // biome-ignore lint/suspicious/noExplicitAny: the PGlite driver's type is narrower than Db
  await migrateLite(db as any, { migrationsFolder: migrationsFolder() });
}
