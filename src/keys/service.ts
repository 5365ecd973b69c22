import { desc, eq, lt, sql } from "drizzle-orm";
import { type Availability, alwaysAvailable, FAULT_POLICIES } from "../db/availability";
import type { Db } from "../db/client";
import { DatabaseUnavailableError, isDatabaseUnavailable, noAnswerWithin } from "../db/errors";
import { type ApiKeyRow, apiKeys } from "../db/schema";
import { KeyConflict, MissingScope, NotFound, ValidationFailed } from "../errors";
import type { Clock } from "../lib/clock";
import { type PageQuery, page, unfilteredList } from "../lib/lists";
import type { Logger } from "../lib/log";
import { deadline } from "../lib/timers";
import {
  type ApiKey,
  type ApiKeyWithSecret,
  BOOTSTRAP,
  type CreateApiKeyInput,
  ROLL_OVERLAP_DEFAULT_MS,
  type RollApiKeyInput,
  type Scope,
} from "./model";
import {
  bearerToken,
  DUMMY_DIGEST,
  formatKey,
  hashSecret,
  newSecret,
  parseKey,
  sameDigest,
  tokenDigest,
} from "./secret";

/** The key a request authenticated with: what a handler may know of its caller. */
export type Caller = { id: string; scopes: readonly Scope[] };

export type KeyServiceOptions = {
  /**
   * How long a verified key is trusted without reading its row again: the bound within which a
   * revocation, or the end of a roll's overlap, reaches every other api replica. 0: no cache.
   */
  cacheTtlMs: number;
  /**
   * How often uses are written to last_used_at; a key's last_used_at is at most twice this stale
   * (a write is skipped when the stored value is within this of the new one). 30 s: a minute.
   */
  lastUsedFlushMs?: number;
};

// Verified keys cached at once: far more than a deployment has keys (only valid keys are cached).
const CACHE_MAX = 10_000;

const NOT_FOUND = "API key";

function toApiKey(row: ApiKeyRow): ApiKey {
  const at = (value: Date | null) => value?.toISOString() ?? null;
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes as Scope[],
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    expires_at: at(row.expiresAt),
    last_used_at: at(row.lastUsedAt),
    previous_secret_expires_at: at(row.previousSecretExpiresAt),
    rolled_at: at(row.rolledAt),
    rolled_by: row.rolledBy,
    revoked_at: at(row.revokedAt),
    revoked_by: row.revokedBy,
  };
}

/** The first of `needed` that `caller` does not hold. */
const missing = (caller: Caller, needed: readonly string[]) =>
  needed.find((scope) => !caller.scopes.includes(scope as Scope));

/**
 * API keys: managed through the keys API and the keys role, checked on every /api request by
 * `authenticate` (src/keys/auth.ts). Never logs, caches or returns a secret except in the one
 * answer that creates it (create, roll).
 */
export function keyService(
  {
    db,
    clock,
    log,
    availability = alwaysAvailable,
  }: {
    db: Db;
    clock: Clock;
    log: Logger;
    /** The api's: a key not in the cache is refused with a 503 at once while the database is out of reach. */
    availability?: Availability;
  },
  { cacheTtlMs, lastUsedFlushMs = 30_000 }: KeyServiceOptions,
) {
  /** SHA-256 of a presented key -> the caller it proved, until `until` (the clock's ms). */
  const verified = new Map<string, { caller: Caller; until: number }>();
  /** Key id -> when it last authenticated, not yet written. */
  let uses = new Map<string, number>();
  let flushTimer: ReturnType<typeof setInterval> | undefined;
  let flushing: Promise<void> = Promise.resolve();

  const forget = (id: string) => {
    for (const [digest, entry] of verified) if (entry.caller.id === id) verified.delete(digest);
  };

  const remember = (digest: string, caller: Caller, until: number) => {
    if (verified.size >= CACHE_MAX) {
      const now = clock.now();
      for (const [d, entry] of verified) if (entry.until <= now) verified.delete(d);
      if (verified.size >= CACHE_MAX) verified.clear();
    }
    verified.set(digest, { caller, until });
  };

  const writeUses = async () => {
    if (uses.size === 0) return;
    const batch = uses;
    uses = new Map();
    const rows = JSON.stringify([...batch].map(([id, at]) => ({ id, at: new Date(at).toISOString() })));
    try {
      // One statement for every key used since the last flush. A row is written only when its
      // stored value is older than one flush interval: replicas sharing a key do not each write it.
      await db.execute(sql`
        UPDATE api_keys AS k SET last_used_at = u.at
        FROM json_to_recordset(${rows}::json) AS u(id uuid, at timestamptz)
        WHERE k.id = u.id
          AND (k.last_used_at IS NULL OR k.last_used_at < u.at - make_interval(secs => ${lastUsedFlushMs / 1000}))`);
    } catch (err) {
      // Kept for the next flush: a use is never lost to a database outage, only written late.
      for (const [id, at] of batch) if ((uses.get(id) ?? 0) < at) uses.set(id, at);
      log.warn("api key uses not recorded; retried at the next flush", { err });
    }
  };
  const flush = () => {
    flushing = flushing.then(writeUses);
    return flushing;
  };

  const used = (id: string, at: number) => {
    uses.set(id, at);
    // Started by the first use: a service that only manages keys (the keys role) runs no timer.
    flushTimer ??= setInterval(() => void flush(), lastUsedFlushMs);
    flushTimer.unref?.();
  };

  const readKey = async (id: string) =>
    (
      await db
        .select({
          scopes: apiKeys.scopes,
          secretHash: apiKeys.secretHash,
          previousSecretHash: apiKeys.previousSecretHash,
          previousSecretExpiresAt: apiKeys.previousSecretExpiresAt,
          expiresAt: apiKeys.expiresAt,
          revokedAt: apiKeys.revokedAt,
        })
        .from(apiKeys)
        .where(eq(apiKeys.id, id))
    )[0];

  /**
   * The caller a key proves, or undefined. A well-formed key always costs one read by its id, one
   * hash and two constant-time comparisons, whether or not the id exists, the secret is right or
   * the key is expired or revoked: the answer and its time tell nothing about which ids exist.
   */
  async function verify(token: string, now: number): Promise<{ caller: Caller; until: number } | undefined> {
    const key = parseKey(token);
    if (!key) {
      sameDigest(hashSecret(token), DUMMY_DIGEST);
      return undefined;
    }
    // A key that must be read while the database is out of reach is a 503 (try again), never a
    // 401 (which says the key is bad), and within the answer policy of every other read: no
    // request waits on a dead connection.
    if (!availability.available) throw new DatabaseUnavailableError("the database cannot be reached");
    let row: Awaited<ReturnType<typeof readKey>>;
    try {
      row = await deadline(readKey(key.id), FAULT_POLICIES.answer.withinMs, noAnswerWithin);
    } catch (error) {
      if (isDatabaseUnavailable(error) && !(error instanceof DatabaseUnavailableError)) availability.lost();
      throw error;
    }
    const presented = hashSecret(key.secret);
    const current = sameDigest(presented, row?.secretHash ?? DUMMY_DIGEST);
    const previous = sameDigest(presented, row?.previousSecretHash ?? DUMMY_DIGEST);
    if (!row || row.revokedAt !== null) return undefined;
    const expires = row.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
    const previousEnds = row.previousSecretExpiresAt?.getTime() ?? 0;
    if (expires <= now) return undefined;
    if (current) return { caller: { id: key.id, scopes: row.scopes as Scope[] }, until: expires };
    if (previous && previousEnds > now) {
      return { caller: { id: key.id, scopes: row.scopes as Scope[] }, until: Math.min(expires, previousEnds) };
    }
    return undefined;
  }

  const row = async (id: string) => {
    const [found] = await db.select().from(apiKeys).where(eq(apiKeys.id, id));
    if (!found) throw new NotFound(NOT_FOUND);
    return found;
  };

  return {
    /**
     * The caller an `Authorization` header proves, or undefined for every kind of refusal alike.
     * A key verified in the last `cacheTtlMs` is trusted without a database read (never past its
     * expiry or the end of its roll's overlap); its use is recorded in memory.
     */
    async authenticate(header: string | null): Promise<Caller | undefined> {
      const token = bearerToken(header);
      if (token === undefined) return undefined;
      const now = clock.now();
      const digest = tokenDigest(token);
      const hit = verified.get(digest);
      if (hit && hit.until > now) {
        used(hit.caller.id, now);
        return hit.caller;
      }
      const proved = await verify(token, now);
      if (!proved) return undefined;
      if (cacheTtlMs > 0) remember(digest, proved.caller, Math.min(proved.until, now + cacheTtlMs));
      used(proved.caller.id, now);
      return proved.caller;
    },

    /** Whether a key authenticates right now, read from the database; no use is recorded. */
    check: async (token: string): Promise<Caller | undefined> => (await verify(token, clock.now()))?.caller,

    /** A new key; `by` may grant only scopes it holds itself. The secret is in this answer only. */
    async create(input: CreateApiKeyInput, by: Caller | typeof BOOTSTRAP): Promise<ApiKeyWithSecret> {
      const lacking = by === BOOTSTRAP ? undefined : missing(by, input.scopes);
      if (lacking) throw new MissingScope(lacking, "a key cannot grant a scope it does not hold");
      if (input.expires_at && input.expires_at.getTime() <= clock.now()) {
        throw new ValidationFailed([{ field: "expires_at", message: "must be in the future" }]);
      }
      const id = Bun.randomUUIDv7();
      const secret = newSecret();
      const [created] = await db
        .insert(apiKeys)
        .values({
          id,
          name: input.name,
          scopes: input.scopes,
          secretHash: hashSecret(secret),
          createdBy: by === BOOTSTRAP ? BOOTSTRAP : by.id,
          expiresAt: input.expires_at ?? null,
        })
        .returning();
      if (!created) throw new Error("INSERT returned no row");
      log.info("api key created", { key_id: id, created_by: created.createdBy, scopes: created.scopes });
      return { ...toApiKey(created), secret: formatKey(id, secret) };
    },

    /** Newest first, revoked keys included; never a secret. */
    async list(query: PageQuery) {
      const rows = await db
        .select()
        .from(apiKeys)
        .where(query.cursor && lt(apiKeys.id, query.cursor.id))
        .orderBy(desc(apiKeys.id))
        .limit(query.limit + 1);
      return page(rows, query, unfilteredList, toApiKey);
    },

    /** Also a revoked key: its id still resolves. */
    get: async (id: string) => toApiKey(await row(id)),

    /**
     * A new secret for the same id and scopes. The secret before it keeps working for
     * `expires_in_ms` (0: stops at once here, within cacheTtlMs on other replicas). Only a caller
     * holding every scope of the key may roll it: the answer hands over the key's power.
     */
    async roll(id: string, input: RollApiKeyInput, by: Caller): Promise<ApiKeyWithSecret> {
      const current = await row(id);
      const lacking = missing(by, current.scopes);
      if (lacking) throw new MissingScope(lacking, "a key cannot roll a key with a scope it does not hold");
      const overlapMs = input.expires_in_ms ?? ROLL_OVERLAP_DEFAULT_MS;
      const now = clock.now();
      const secret = newSecret();
      const [rolled] = await db
        .update(apiKeys)
        .set({
          secretHash: hashSecret(secret),
          // In SET, a column names the row's value before this UPDATE: the secret being replaced.
          previousSecretHash: overlapMs > 0 ? sql`${apiKeys.secretHash}` : null,
          previousSecretExpiresAt: overlapMs > 0 ? new Date(now + overlapMs) : null,
          rolledAt: new Date(now),
          rolledBy: by.id,
        })
        // Revoked between the read and here: nothing is rolled.
        .where(sql`${apiKeys.id} = ${id} AND ${apiKeys.revokedAt} IS NULL`)
        .returning();
      if (!rolled) throw new KeyConflict("the key is revoked: a revoked key cannot be rolled");
      forget(id);
      log.info("api key rolled", { key_id: id, rolled_by: by.id, overlap_ms: overlapMs });
      return { ...toApiKey(rolled), secret: formatKey(id, secret) };
    },

    /**
     * Revoked at once here, within cacheTtlMs on every other replica. The row is kept. Revoking a
     * revoked key changes nothing. A key cannot revoke itself, so that no administrator locks
     * everyone out by accident; the keys role (bootstrap) can revoke any.
     */
    async revoke(id: string, by: Caller | typeof BOOTSTRAP): Promise<ApiKey> {
      const actor = by === BOOTSTRAP ? BOOTSTRAP : by.id;
      if (actor === id) throw new KeyConflict("a key cannot revoke itself: revoke it with another key");
      const [revoked] = await db
        .update(apiKeys)
        .set({
          revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())`,
          revokedBy: sql`coalesce(${apiKeys.revokedBy}, ${actor})`,
        })
        .where(eq(apiKeys.id, id))
        .returning();
      if (!revoked) throw new NotFound(NOT_FOUND);
      forget(id);
      log.info("api key revoked", { key_id: id, revoked_by: revoked.revokedBy });
      return toApiKey(revoked);
    },

    /** Writes the uses recorded so far (also done every lastUsedFlushMs). */
    flush,

    /** Stops the flush timer and writes what is left. */
    async stop() {
      if (flushTimer) clearInterval(flushTimer);
      flushTimer = undefined;
      await flush();
    },
  };
}

export type KeyService = ReturnType<typeof keyService>;
