// Webhook signing secrets at rest (issue 19, item 9): rows stored in clear before encryption, and
// rows sealed with an older key, are sealed under the first key of WEBHOOK_SECRET_KEYS when a
// process starts; any number of them may do it at once; a key dropped too early stops the start.
import { afterAll, afterEach, beforeEach, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { type SecretBox, sealStoredSecrets, secretBox } from "../../../src/webhooks/secret-box";
import { newSecret } from "../../../src/webhooks/signing";
import { TEST_SECRET_KEYS, testBox } from "../../kit/api";
import { resetDatabase, testDatabase } from "../../kit/db";
import { query } from "../../kit/fixtures";
import { startMain, stopEverything } from "../../kit/processes";

const database = testDatabase(8);
afterAll(() => database.close());
beforeEach(() => resetDatabase(database));
afterEach(() => stopEverything());

const K2 = `k2:${Buffer.alloc(32, 2).toString("base64")}`;
const k2 = { id: "k2", key: Buffer.alloc(32, 2) };

type Row = { id: string; secret: string; previous_secret: string | null };
const rows = () => query<Row>(database, sql`SELECT id, secret, previous_secret FROM webhook_endpoints ORDER BY id`);

/** `count` endpoints as an earlier version stored them: secret and previous secret in clear. */
async function endpointsInClear(count: number) {
  const stored: { id: string; secret: string; previous: string }[] = [];
  for (let i = 0; i < count; i++) {
    const row = { id: Bun.randomUUIDv7(), secret: newSecret(), previous: newSecret() };
    await database.db.execute(sql`
      INSERT INTO webhook_endpoints (id, url, event_types, secret, previous_secret, previous_secret_expires_at, created_by, updated_by)
      VALUES (${row.id}, 'https://93.184.216.34/hook', enum_range(NULL::payout_event_type), ${row.secret}, ${row.previous},
              now() + interval '1 hour', 'anonymous', 'anonymous')`);
    stored.push(row);
  }
  return stored;
}

/** Every row's secrets open with `box` to what was stored, and none is in clear. */
async function expectSealed(box: SecretBox, keyId: string, stored: { id: string; secret: string; previous: string }[]) {
  const now = await rows();
  expect(JSON.stringify(now)).not.toContain("whsec_");
  for (const row of now) {
    const was = stored.find((s) => s.id === row.id);
    expect(row.secret).toStartWith(`v1:${keyId}:`);
    expect(box.open(row.secret, row.id)).toBe(was?.secret as string);
    expect(box.open(row.previous_secret as string, row.id)).toBe(was?.previous as string);
  }
}

test("secrets in clear are sealed, once, by any number of processes starting at once", async () => {
  const stored = await endpointsInClear(20);
  const box = testBox();
  const reports = await Promise.all(Array.from({ length: 4 }, () => sealStoredSecrets({ db: database.db, box })));
  // Every column was written by exactly one of them: each UPDATE holds only while the value is the one read.
  expect(reports.reduce((n, r) => n + r.sealed, 0)).toBe(40);
  expect(reports.every((r) => r.resealed === 0 && Object.keys(r.unreadable).length === 0)).toBe(true);
  await expectSealed(box, "test", stored);
  // Again: nothing to do.
  expect(await sealStoredSecrets({ db: database.db, box })).toEqual({ sealed: 0, resealed: 0, unreadable: {} });
});

test("an expired previous secret is dropped, not sealed: it signs nothing any more", async () => {
  await endpointsInClear(1);
  await database.db.execute(sql`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second'`);
  expect(await sealStoredSecrets({ db: database.db, box: testBox() })).toMatchObject({ sealed: 1 });
  expect((await rows())[0]?.previous_secret).toBeNull();
});

test("a worker starting with a new first key seals every secret again under it; one without the old key refuses to start", async () => {
  const stored = await endpointsInClear(3);
  await sealStoredSecrets({ db: database.db, box: testBox() });

  // Rotation, step 2: the new key first, the old one still listed.
  const rotating = startMain(["--role=worker"], {
    WEBHOOK_SECRET_KEYS: `${K2},${TEST_SECRET_KEYS}`,
    LOG_LEVEL: "info",
    WORKER_THREADS: "1",
  });
  const line = JSON.parse(
    await rotating.line((l) => l.includes("webhook signing secrets encrypted with the current key")),
  );
  expect(line).toMatchObject({ key_id: "k2", were_in_clear: 0, were_under_another_key: 6 });
  await expectSealed(secretBox([k2]), "k2", stored);
  rotating.child.kill("SIGTERM");
  expect((await rotating.done).exitCode).toBe(0);

  // A key list without k2 (dropped before the secrets were sealed again): a configuration error, exit 2.
  const early = await startMain(["--role=worker"], { WEBHOOK_SECRET_KEYS: TEST_SECRET_KEYS, WORKER_THREADS: "1" }).done;
  expect(early.exitCode).toBe(2);
  expect(early.stderr.join("\n")).toContain(
    'payouts: WEBHOOK_SECRET_KEYS lacks the key(s) that 6 stored webhook signing secret(s) are encrypted with: "k2"',
  );
  await expectSealed(secretBox([k2]), "k2", stored);
}, 60_000);

test("no log line of a starting worker holds a secret or the key, at debug level", async () => {
  const stored = await endpointsInClear(2);
  const worker = startMain(["--role=worker"], { LOG_LEVEL: "debug", WORKER_THREADS: "1" });
  await worker.line((l) => l.includes("webhook signing secrets encrypted with the current key"));
  worker.child.kill("SIGTERM");
  const { stdout, stderr } = await worker.done;
  const output = [...stdout, ...stderr].join("\n");
  expect(output).not.toContain("whsec_");
  for (const { secret, previous } of stored) {
    for (const s of [secret, previous]) expect(output).not.toContain(s.slice("whsec_".length));
  }
  expect(output).not.toContain(TEST_SECRET_KEYS.slice("test:".length));
}, 60_000);
