import type { Config } from "../config";
import { DatabaseUnreachable, migrateWhenReachable } from "../db/migrate";
import type { Logger } from "../lib/log";
import { requireUrls } from "./adapters";
import { onShutdown } from "./lifecycle";

/** Migrates, waiting for the database up to MIGRATE_WAIT_MS; a failure exits 1 with one line. */
export async function migrateOrExit(config: Config, log: Logger): Promise<void> {
  try {
    await migrateWhenReachable(config.databaseUrl as string, config.migrateWaitMs, log);
  } catch (err) {
    // An outage is not a bug: its line has no stack.
    if (err instanceof DatabaseUnreachable) log.error(err.message, { attempts: err.attempts, reason: err.reason });
    else log.error("migrations failed; none was applied", { err });
    process.exit(1);
  }
}

/**
 * `--role=migrate`: a task, not a service, so no components: it applies the migrations and exits 0.
 * Interrupted, it exits 1: a Job or compose must not count an interrupted migration as done (its
 * transaction is rolled back with the connection).
 */
export async function migrateRole(config: Config, log: Logger): Promise<void> {
  requireUrls(config, "migrate", ["DATABASE_URL"]);
  onShutdown(async () => log.warn("stopped before the migrations were applied"), 1);
  await migrateOrExit(config, log);
  log.info("migrations applied");
  process.exit(0);
}
