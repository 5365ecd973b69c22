// A create's deadline is enforced by PostgreSQL at its commit (drizzle/0010): whatever the create's
// statement waits on after writing its row (a table lock its triggers need, a starved CPU), it
// commits before its deadline or never. So no answer is contradicted by the database afterwards:
// a 503 left nothing, a 504's follow-up (a GET for a keyless create, a retry with the key for a
// keyed one) is final, a 201 is stored once. Clients create keyed and keyless payouts while another
// session takes the locks an operator's statement, a migration or a VACUUM FULL would take.
import { afterAll, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { loadConfig } from "../../../src/config";
import { connectPostgres, resultRows } from "../../../src/db/client";
import { createAnswerBoundMs } from "../../../src/payouts/create";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { eventually } from "../../kit/wait";

const APP = "payouts-test-deadline";
const LOCK_HELD_MS = 3000;
const KEYLESS_CLIENTS = 6;
const KEYED_CLIENTS = 6;
const { createDeadlineMs } = loadConfig({});
const bound = createAnswerBoundMs(createDeadlineMs);

const pool = connectPostgres(process.env.DATABASE_URL as string, 10, APP);
const direct = testDatabase(2);
const api = testApi(pool);
afterAll(async () => {
  await pool.close();
  await direct.close();
});

const count = async (query: ReturnType<typeof sql>) =>
  resultRows<{ n: number }>(await direct.db.execute(query))[0]?.n ?? 0;
/** Statements of the api's pool waiting for a lock, or sleeping in a trigger. */
const blocked = () =>
  count(sql`SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE application_name = ${APP} AND (wait_event_type = 'Lock' OR wait_event = 'PgSleep')`);
/** Statements of the api's pool still running (blocked ones that ran on after their answer). */
const running = () =>
  count(sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${APP} AND state <> 'idle'`);
const payoutsWith = async (comment: string) =>
  resultRows<{ id: string }>(
    await direct.db.execute(sql`SELECT id::text AS id FROM payouts WHERE comment = ${comment}`),
  );
const keyPayout = async (key: string) =>
  resultRows<{ id: string }>(
    await direct.db.execute(sql`SELECT payout_id::text AS id FROM idempotency_keys WHERE key = ${key}`),
  )[0]?.id;

type Answer = {
  status: number;
  ms: number;
  id?: string;
  payoutId?: string;
  location: string | null;
  followUp?: number;
};

const post = async (comment: string, key?: string): Promise<Answer> => {
  const started = performance.now();
  const r = await api.request(
    "POST",
    "/api/payouts/",
    { amount: "10.00", currency: "EUR", recipient_details: "DE89 3704", comment },
    key ? { "idempotency-key": key } : {},
  );
  return {
    status: r.status,
    ms: performance.now() - started,
    id: r.body?.id,
    payoutId: r.body?.payout_id,
    location: r.headers.get("location"),
  };
};

/**
 * Keyless clients (a new marker per request; a 504 followed by a GET of the id it names, as the
 * 504 says) and keyed clients (a new key after a 201, the same key again after a 503 or 504, as
 * those say) creating back to back until `stop()`.
 */
function startClients(run: string) {
  const keyless = new Map<string, Answer>();
  const keyed = new Map<string, Answer[]>();
  let stopping = false;
  const keylessClient = async (n: number) => {
    for (let i = 0; !stopping; i++) {
      const marker = `${run}-keyless-${n}-${i}`;
      const answer = await post(marker);
      if (answer.status === 504) {
        answer.followUp = (await api.request("GET", `/api/payouts/${answer.payoutId}/`)).status;
      }
      keyless.set(marker, answer);
    }
  };
  const keyedClient = async (n: number) => {
    for (let i = 0; !stopping; i++) {
      const key = `${run}-keyed-${n}-${i}`;
      const answers: Answer[] = [];
      keyed.set(key, answers);
      // The key's marker is the key: every retry sends the same body.
      do answers.push(await post(key, key));
      while (answers.at(-1)?.status !== 201 && !stopping);
    }
  };
  const all = Promise.all([
    ...Array.from({ length: KEYLESS_CLIENTS }, (_, n) => keylessClient(n)),
    ...Array.from({ length: KEYED_CLIENTS }, (_, n) => keyedClient(n)),
  ]);
  const created = () =>
    [...keyless.values()].filter((a) => a.status === 201).length +
    [...keyed.values()].flat().filter((a) => a.status === 201).length;
  return {
    created,
    async stop() {
      stopping = true;
      await all;
      return { keyless, keyed };
    },
  };
}

/** Every answer against what the database holds once nothing of the api runs any more. */
async function expectNoAnswerContradicted({
  keyless,
  keyed,
}: Awaited<ReturnType<ReturnType<typeof startClients>["stop"]>>) {
  await eventually(async () => (await running()) === 0, 30_000);
  const answers = [...keyless.values(), ...[...keyed.values()].flat()];
  expect(answers.filter((a) => a.ms > bound)).toEqual([]);
  expect(answers.filter((a) => ![201, 503, 504].includes(a.status))).toEqual([]);

  for (const [marker, answer] of keyless) {
    const stored = (await payoutsWith(marker)).map((p) => p.id);
    if (answer.status === 201) expect({ marker, stored }).toEqual({ marker, stored: [answer.id as string] });
    if (answer.status === 503) expect({ marker, stored }).toEqual({ marker, stored: [] });
    if (answer.status === 504) {
      // The follow-up's word was final: 404, nothing ever; 200, that payout.
      expect({ marker, stored }).toEqual({
        marker,
        stored: answer.followUp === 200 ? [answer.payoutId as string] : [],
      });
      expect(answer.location).toBe(`/api/payouts/${answer.payoutId}/`);
    }
  }
  for (const [key, attempts] of keyed) {
    let stored = (await payoutsWith(key)).map((p) => p.id);
    expect(stored.length).toBeLessThanOrEqual(1);
    // A client that stopped after a 503 or 504 retries once more with its key, as it was told.
    if (attempts.at(-1)?.status !== 201) {
      const last = await post(key, key);
      expect(last.status).toBe(201);
      attempts.push(last);
      stored = (await payoutsWith(key)).map((p) => p.id);
    }
    // One payout per key, the key's, and no answer ever named another id.
    expect({ key, stored }).toEqual({ key, stored: [(await keyPayout(key)) as string] });
    for (const a of attempts) {
      if (a.status === 201) expect(a.id).toBe(stored[0] as string);
      else
        expect({ key, payoutId: a.payoutId, location: a.location }).toEqual({
          key,
          payoutId: undefined,
          location: null,
        });
    }
  }
}

for (const [table, mode] of [
  ["payout_outbox", "SHARE"],
  ["payout_events", "ACCESS EXCLUSIVE"],
  ["payouts", "SHARE"],
] as const) {
  test(
    `creates while another session holds LOCK TABLE ${table} IN ${mode} MODE for 3 s: no answer is contradicted`,
    async () => {
      const run = `${table}-${Bun.randomUUIDv7()}`;
      const clients = startClients(run);
      await eventually(async () => clients.created() >= 20);
      const locker = postgres(process.env.DATABASE_URL as string, { max: 1, onnotice: () => {} });
      try {
        await locker.begin(async (tx) => {
          await tx.unsafe(`LOCK TABLE ${table} IN ${mode} MODE`);
          await eventually(async () => (await blocked()) > 0);
          await Bun.sleep(LOCK_HELD_MS);
        });
      } finally {
        await locker.end();
      }
      const createdAtRelease = clients.created();
      // Service is back: creates succeed again.
      await eventually(async () => clients.created() >= createdAtRelease + 20);
      const answers = await clients.stop();
      // The lock was felt.
      expect([...answers.keyless.values()].some((a) => a.status !== 201)).toBe(true);
      expect([...answers.keyed.values()].flat().some((a) => a.status !== 201)).toBe(true);
      await expectNoAnswerContradicted(answers);
    },
    { timeout: 90_000 },
  );
}

test(
  "a create whose triggers run past its deadline (a starved backend) rolls back at its commit: its 503 stays true",
  async () => {
    const run = `slow-${Bun.randomUUIDv7()}`;
    // A stand-in for a starved CPU: the creates of this run spend longer than the deadline in a
    // trigger after their rows are written, with no lock to time out on.
    await direct.db.execute(
      sql.raw(`
        CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT FROM new_rows WHERE comment LIKE 'slow-%') THEN
            PERFORM pg_sleep(${(createDeadlineMs + 1000) / 1000});
          END IF;
          RETURN NULL;
        END $$;
        CREATE TRIGGER slow_commit AFTER INSERT ON payouts REFERENCING NEW TABLE AS new_rows
          FOR EACH STATEMENT EXECUTE FUNCTION slow_commit();`),
    );
    try {
      const keyless = post(`${run}-keyless`);
      const keyed = post(`${run}-keyed`, `${run}-keyed`);
      await eventually(async () => (await blocked()) >= 2);
      const [keylessAnswer, keyedAnswer] = await Promise.all([keyless, keyed]);
      expect([keylessAnswer.status, keyedAnswer.status]).toEqual([503, 503]);
      // The statements wake up after their answers, reach their commits past the deadline, and
      // PostgreSQL refuses them.
      await eventually(async () => (await running()) === 0, 30_000);
      expect(await payoutsWith(`${run}-keyless`)).toEqual([]);
      expect(await payoutsWith(`${run}-keyed`)).toEqual([]);
      expect(await keyPayout(`${run}-keyed`)).toBeUndefined();
    } finally {
      await direct.db.execute(sql`DROP TRIGGER slow_commit ON payouts; DROP FUNCTION slow_commit()`);
    }
  },
  { timeout: 30_000 },
);
