import { lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { idempotencyKeys } from "../db/schema";
import type { Logger } from "../lib/log";
import { every, type Loop } from "../lib/timers";

/**
 * A key older than the TTL is expired: the purge deletes it and a create may use it again, whether
 * or not the purge has reached it yet. Both sides judge by the database's clock, the one that wrote
 * the key's created_at, so every replica draws the line at the same instant whatever its own clock.
 */
export const expired = (ttlMs: number): SQL =>
  lt(idempotencyKeys.createdAt, sql`now() - make_interval(secs => ${ttlMs / 1000})`) as SQL;

// Any constant works; it only has to be the same for every purger of this database.
const PURGE_LOCK = 7_250_002;

/**
 * Deletes at most `limit` keys older than `ttlMs`, oldest first, in one short transaction, and
 * returns how many. The oldest are read from idempotency_keys_created_idx, so a batch costs the
 * same however many keys there are.
 *
 * Two guarantees, for two different things:
 * - `pg_try_advisory_xact_lock`: one purger at a time across every worker replica; another one
 *   that finds the lock taken deletes nothing this round (returns -1) rather than contending for
 *   the same oldest rows. A transaction lock, so PgBouncer in transaction mode keeps it intact.
 * - `FOR UPDATE SKIP LOCKED`: a key that a create is re-using right now (its expired row being
 *   replaced, see createIdempotent) is skipped, never waited for: the purge never slows a request.
 */
export async function purgeExpiredKeys(db: Db, ttlMs: number, limit: number): Promise<number> {
  return db.transaction(async (tx) => {
    const [lock] = await tx
      .select({ held: sql<boolean>`pg_try_advisory_xact_lock(${PURGE_LOCK})` })
      .from(sql`(VALUES (1)) AS one`);
    if (!lock?.held) return -1;
    // A key is its API key's id and its value together (another API key may hold the same value,
    // not yet expired): the rows are deleted by that pair, never by the value alone.
    const oldest = tx
      .select({ apiKeyId: idempotencyKeys.apiKeyId, key: idempotencyKeys.key })
      .from(idempotencyKeys)
      .where(expired(ttlMs))
      .orderBy(idempotencyKeys.createdAt)
      .limit(limit)
      .for("update", { skipLocked: true });
    const deleted = await tx
      .delete(idempotencyKeys)
      .where(sql`(${idempotencyKeys.apiKeyId}, ${idempotencyKeys.key}) IN ${oldest}`)
      .returning({ key: idempotencyKeys.key });
    return deleted.length;
  });
}

export type KeyPurgeOptions = { ttlMs: number; intervalMs: number; batchSize: number };

/**
 * Every `intervalMs` (and once at start), purges expired idempotency keys batch after batch until a
 * batch comes back short. A failure (the database is down) is logged and retried next round; stop()
 * waits for a batch in progress (one short statement) to commit.
 */
export function startKeyPurge({ db, log }: { db: Db; log: Logger }, options: KeyPurgeOptions): Loop {
  const round = async (stopping: AbortSignal) => {
    let purged = 0;
    try {
      for (;;) {
        const deleted = await purgeExpiredKeys(db, options.ttlMs, options.batchSize);
        if (deleted > 0) purged += deleted;
        if (stopping.aborted || deleted < options.batchSize) break;
      }
    } finally {
      if (purged > 0) log.info("expired idempotency keys purged", { count: purged });
    }
  };
  return every(options.intervalMs, round, { name: "idempotency key purge", log });
}
