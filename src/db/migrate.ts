import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { count, inArray } from "drizzle-orm";
import { bigint, pgSchema, serial, text } from "drizzle-orm/pg-core";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { compiledBinary } from "../lib/binary";
import type { Logger } from "../lib/log";
import { deadline } from "../lib/timers";
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

/**
 * Failures that mean "not up yet": the server refuses or drops connections, or its name does not
 * resolve yet, or it is starting. Anything else (a migration that fails, a wrong password, a missing
 * database) will not mend itself by waiting.
 */
const NOT_UP_YET = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P03", // cannot_connect_now: the server is starting up or shutting down
  "53300", // too_many_connections
]);

/** The database did not accept a connection within the wait: the migrations were not applied. */
export class DatabaseUnreachable extends Error {
  constructor(
    readonly attempts: number,
    readonly reason: string,
  ) {
    super("the database was not reachable within MIGRATE_WAIT_MS; no migration was applied");
  }
}

const errorCode = (err: unknown): string =>
  String((err as { code?: unknown } | undefined)?.code ?? (err as { errno?: unknown } | undefined)?.errno ?? "");

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * migratePostgres, retried with exponential backoff (250 ms doubling, at most 5 s apart) while the
 * database is not up yet, for at most `waitMs`: a migrate Job or container may start before its
 * database. One line per failed attempt; DatabaseUnreachable when the time is up.
 */
export async function migrateWhenReachable(url: string, waitMs: number, log: Logger): Promise<void> {
  // Time waited, not a time of day (no Clock port): migrate runs before anything is wired.
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await migratePostgres(url);
      return;
    } catch (err) {
      if (!NOT_UP_YET.has(errorCode(err))) throw err;
      const delay = Math.min(250 * 2 ** (attempt - 1), 5000, started + waitMs - performance.now());
      if (delay <= 0) throw new DatabaseUnreachable(attempt, errorMessage(err));
      log.warn("database not reachable yet; retrying", {
        attempt,
        code: errorCode(err),
        reason: errorMessage(err),
        retry_in_ms: delay,
      });
      await Bun.sleep(delay);
    }
  }
}

/**
 * Where drizzle's migrator records what it applied: one row per migration, `created_at` being the
 * journal entry's `when`. Declared here, not in schema.ts, so that drizzle-kit never manages it.
 */
const appliedMigrations = pgSchema("drizzle").table("__drizzle_migrations", {
  id: serial("id").primaryKey(),
  hash: text("hash").notNull(),
  createdAt: bigint("created_at", { mode: "number" }),
});

/**
 * A readiness check: whether the database holds every migration in this build's journal. Once
 * true it stays true without asking again, as migrations are never undone; a database without
 * the table (nothing migrated yet) or that does not answer within `timeoutMs` is not current.
 */
export function schemaCheck(db: Db, timeoutMs = 2000, folder = migrationsFolder()): () => Promise<boolean> {
  const journal = JSON.parse(readFileSync(join(folder, "meta", "_journal.json"), "utf8")) as {
    entries: { when: number }[];
  };
  const known = journal.entries.map((entry) => entry.when);
  let current = false;
  return async () => {
    if (current) return true;
    const applied = db
      .select({ n: count() })
      .from(appliedMigrations)
      .where(inArray(appliedMigrations.createdAt, known))
      .then(([row]) => row?.n ?? 0);
    current = (await deadline(applied, timeoutMs).catch(() => -1)) === known.length;
    return current;
  };
}

export async function migratePglite(db: Db): Promise<void> {
  const { migrate: migrateLite } = await import("drizzle-orm/pglite/migrator");
  // biome-ignore lint/suspicious/noExplicitAny: the PGlite driver's type is narrower than Db
  await migrateLite(db as any, { migrationsFolder: migrationsFolder() });
}
