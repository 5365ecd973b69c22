// Idempotency keys are kept for IDEMPOTENCY_KEY_TTL_MS: within it a retry replays, after it the key
// may create a new payout (even before the purge reached it), and the purge deletes expired keys
// in small batches, one purger at a time, from the created_at index, never waiting on a locked key.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { purgeExpiredKeys } from "../../../src/payouts/key-retention";
import { testApi } from "../../kit/api";
import { databaseUrl, testDatabase } from "../../kit/db";
import { validBody } from "../../kit/fixtures";

const database = testDatabase();
const raw = postgres(databaseUrl, { max: 3, onnotice: () => {} });
afterAll(async () => {
  await raw.end();
  await database.close();
});

const TTL_MS = 1000;
// The purge tests' keys are older than any other test's, and their TTL leaves every other key alone.
const TEN_YEARS_S = 10 * 365 * 86_400;
const PURGE_TTL_MS = 9 * 365 * 86_400_000;
const run = `${Date.now()}`;
const post = (api: ReturnType<typeof testApi>, key: string, body: object = validBody) =>
  api.request("POST", "/api/payouts/", body, { "idempotency-key": key });

/** Makes a key look `seconds` old. */
const age = (key: string, seconds: number) =>
  raw`UPDATE idempotency_keys SET created_at = now() - make_interval(secs => ${seconds}) WHERE key = ${key}`;

/** Inserts `n` keys named prefix-i, `seconds` old (and 1 ms apart, oldest first by i). */
const insertKeys = (prefix: string, n: number, seconds: number) =>
  raw`INSERT INTO idempotency_keys (api_key_id, key, fingerprint, payout_id, response_status, response_body, created_at)
      SELECT gen_random_uuid(), ${prefix} || '-' || i, 'f', gen_random_uuid(), 201, '{}'::jsonb,
             now() - make_interval(secs => ${seconds}) - make_interval(secs => (${n} - i) / 1000.0)
      FROM generate_series(1, ${n}) AS i`;

const countKeys = async (prefix: string) =>
  (await raw`SELECT count(*)::int AS n FROM idempotency_keys WHERE key LIKE ${`${prefix}-%`}`)[0]?.n as number;

test("within the TTL a key replays; after it the same key creates a new payout, even before any purge", async () => {
  const api = testApi(database, { idempotencyKeyTtlMs: TTL_MS });
  const key = `ttl-${run}-reuse`;
  const first = await post(api, key);
  expect(first.status).toBe(201);
  const replay = await post(api, key);
  expect(replay.status).toBe(201);
  expect(replay.headers.get("idempotent-replayed")).toBe("true");
  expect(replay.body.id).toBe(first.body.id);

  await age(key, 2);
  // Expired: another body is no 422 and the key creates a second payout, now bound to it.
  const other = { ...validBody, amount: "1.00" };
  const second = await post(api, key, other);
  expect(second.status).toBe(201);
  expect(second.headers.get("idempotent-replayed")).toBeNull();
  expect(second.body.id).not.toBe(first.body.id);
  expect(second.body.amount).toBe("1.00");
  const again = await post(api, key, other);
  expect(again.headers.get("idempotent-replayed")).toBe("true");
  expect(again.body.id).toBe(second.body.id);
  expect((await post(api, key)).status).toBe(422);

  const [row] =
    await raw`SELECT payout_id, created_at > now() - interval '1 minute' AS fresh FROM idempotency_keys WHERE key = ${key}`;
  expect(row).toEqual({ payout_id: second.body.id, fresh: true });
  const payouts = await raw`SELECT id FROM payouts WHERE id IN ${raw([first.body.id, second.body.id])}`;
  expect(payouts).toHaveLength(2);
});

test("an expired key sent many times at once still creates exactly one new payout", async () => {
  const api = testApi(database, { idempotencyKeyTtlMs: TTL_MS });
  const key = `ttl-${run}-race`;
  expect((await post(api, key)).status).toBe(201);
  await age(key, 2);
  const responses = await Promise.all(Array.from({ length: 10 }, () => post(api, key)));
  expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
  const created = responses.filter((r) => r.headers.get("idempotent-replayed") === null);
  expect(created).toHaveLength(1);
  expect(new Set(responses.map((r) => r.body.id))).toEqual(new Set([created[0]?.body.id]));
});

test("the purge deletes only expired keys, at most a batch per call, oldest first", async () => {
  const prefix = `purge-${run}`;
  await insertKeys(`${prefix}-old`, 1200, TEN_YEARS_S);
  await insertKeys(`${prefix}-new`, 5, 0);
  expect(await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500)).toBe(500);
  // Oldest first: the first 500 (i = 1..500) are gone.
  expect(await countKeys(`${prefix}-old`)).toBe(700);
  const [oldestLeft] =
    await raw`SELECT min(substring(key from '[0-9]+$')::int) AS i FROM idempotency_keys WHERE key LIKE ${`${prefix}-old-%`}`;
  expect(oldestLeft?.i).toBe(501);
  expect(await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500)).toBe(500);
  expect(await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500)).toBe(200);
  expect(await countKeys(`${prefix}-old`)).toBe(0);
  expect(await countKeys(`${prefix}-new`)).toBe(5);
});

test("the purge deletes an expired key of one API key, never the same value another API key holds unexpired", async () => {
  const key = `shared-${run}`;
  const [expiredOwner, freshOwner] = [Bun.randomUUIDv7(), Bun.randomUUIDv7()];
  await raw`INSERT INTO idempotency_keys (api_key_id, key, fingerprint, payout_id, response_status, response_body, created_at)
            VALUES (${expiredOwner}, ${key}, 'f', gen_random_uuid(), 201, '{}'::jsonb, now() - make_interval(secs => ${TEN_YEARS_S})),
                   (${freshOwner}, ${key}, 'f', gen_random_uuid(), 201, '{}'::jsonb, now())`;
  expect(await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500)).toBeGreaterThanOrEqual(1);
  expect([...(await raw`SELECT api_key_id FROM idempotency_keys WHERE key = ${key}`)]).toEqual([
    { api_key_id: freshOwner },
  ]);
});

test("one purger at a time: while another holds the purge lock, a purge deletes nothing", async () => {
  const prefix = `lock-${run}`;
  await insertKeys(prefix, 3, TEN_YEARS_S);
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const other = raw.begin(async (tx) => {
    // The same lock a purging replica holds for its transaction.
    await tx`SELECT pg_advisory_xact_lock(7250002)`;
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  try {
    expect(await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500)).toBe(-1);
    expect(await countKeys(prefix)).toBe(3);
  } finally {
    release.resolve();
    await other;
  }
  expect(await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500)).toBe(3);
  expect(await countKeys(prefix)).toBe(0);
});

test("a key locked by a create re-using it is skipped, not waited for", async () => {
  const prefix = `skip-${run}`;
  await insertKeys(prefix, 2, TEN_YEARS_S);
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const holder = raw.begin(async (tx) => {
    await tx`SELECT key FROM idempotency_keys WHERE key = ${`${prefix}-1`} FOR UPDATE`;
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  try {
    await purgeExpiredKeys(database.db, PURGE_TTL_MS, 500);
    expect((await raw`SELECT key FROM idempotency_keys WHERE key LIKE ${`${prefix}-%`}`).map((r) => r.key)).toEqual([
      `${prefix}-1`,
    ]);
  } finally {
    release.resolve();
    await holder;
  }
});

test("the purge reads the oldest keys from the created_at index", async () => {
  await raw`ANALYZE idempotency_keys`;
  const plan = await raw.begin(async (tx) => {
    // Whatever the table's size today: the plan must be able to stop after a batch.
    await tx`SET LOCAL enable_seqscan = off`;
    return tx`EXPLAIN (FORMAT JSON) SELECT key FROM idempotency_keys
              WHERE created_at < now() - make_interval(secs => 604800) ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED`;
  });
  const text = JSON.stringify(plan);
  expect(text).toContain('"Index Name":"idempotency_keys_created_idx"');
  expect(text).not.toContain('"Node Type":"Sort"');
});
