// The worker role runs the idempotency keys' purge (test/contract/payouts/key-retention.test.ts holds
// the purge's rules) when it starts.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { databaseUrl } from "../../kit/db";
import { killSpawned, spawnRole } from "../../kit/processes";
import { eventually } from "../../kit/wait";

const raw = postgres(databaseUrl, { max: 1, onnotice: () => {} });
afterAll(async () => {
  await killSpawned();
  await raw.end();
}, 30_000);

const run = `${Date.now()}`;

/** Inserts `n` keys named prefix-i, `seconds` old. */
const insertKeys = (prefix: string, n: number, seconds: number) =>
  raw`INSERT INTO idempotency_keys (api_key_id, key, fingerprint, payout_id, response_status, response_body, created_at)
      SELECT gen_random_uuid(), ${prefix} || '-' || i, 'f', gen_random_uuid(), 201, '{}'::jsonb, now() - make_interval(secs => ${seconds})
      FROM generate_series(1, ${n}) AS i`;

const countKeys = async (prefix: string) =>
  (await raw`SELECT count(*)::int AS n FROM idempotency_keys WHERE key LIKE ${`${prefix}-%`}`)[0]?.n as number;

test("the worker role purges expired keys at start", async () => {
  const prefix = `worker-${run}`;
  // Two days old: expired under the shortest TTL the configuration allows.
  await insertKeys(prefix, 3, 2 * 86_400);
  await insertKeys(`young-${run}`, 2, 3600);
  spawnRole("worker", { WORKER_THREADS: "1", IDEMPOTENCY_KEY_TTL_MS: "86400000" });
  await eventually(async () => (await countKeys(prefix)) === 0, 20_000, 200);
  expect(await countKeys(`young-${run}`)).toBe(2);
}, 30_000);
