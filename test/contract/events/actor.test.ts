// Who did it (docs: access-control): every payout event names its actor, the id of the API key
// whose request made the change, or "system" for whatever writes without one (the worker, the
// relay, psql). The events trigger records it: created_by per row for creates, the
// transaction-local payouts.actor for updates and deletes, which must end with its statement.
import { afterAll, expect, test } from "bun:test";
import { type SQL, sql } from "drizzle-orm";
import { SCOPES } from "../../../src/keys/model";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { createPayout, moveTo, query, validBody } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";

// One connection: every statement of this file, the api's and the test's own, shares it, so a
// setting that outlived its statement would be seen by the next one.
const database = testDatabase(1);
// The test's own: one connection holds a lock while the other watches.
const watcher = testDatabase(2);
afterAll(async () => {
  await database.close();
  await watcher.close();
});

const api = testApi(database);
const newKey = (name: string) => api.keys.create({ name, scopes: [...SCOPES] }, "bootstrap");
const [alice, bob] = await Promise.all([newKey("alice"), newKey("bob")]);
const as = (key: { secret: string }) => ({ authorization: `Bearer ${key.secret}` });

type Event = { type: string; actor: string | null; created_at: string; payout_id: string };

async function history(id: string): Promise<Event[]> {
  const response = await api.request("GET", `/api/payouts/${id}/events/`);
  expect(response.status).toBe(200);
  return response.body.results;
}

const actors = async (id: string) => (await history(id)).map((e) => [e.type, e.actor]);

const run = async (statement: SQL) => {
  await database.db.execute(statement);
};

test("created, updated, cancelled and deleted name the key that asked; a second key's changes name it", async () => {
  const created = await api.request("POST", "/api/payouts/", validBody, as(alice));
  expect(created.status).toBe(201);
  const id = created.body.id;
  expect((await api.request("PATCH", `/api/payouts/${id}/`, { comment: "by bob" }, as(bob))).status).toBe(200);
  expect((await api.request("PATCH", `/api/payouts/${id}/`, { status: "CANCELLED" }, as(alice))).status).toBe(200);
  expect((await api.request("DELETE", `/api/payouts/${id}/`, undefined, as(bob))).status).toBe(204);
  expect(await actors(id)).toEqual([
    ["payout.created", alice.id],
    ["payout.updated", bob.id],
    ["payout.cancelled", alice.id],
    ["payout.deleted", bob.id],
  ]);
  // The list shows it too, and so the webhook payload, which is the same event resource.
  const listed = await api.request("GET", `/api/events/?payout_id=${id}`);
  expect(listed.body.results.map((e: Event) => e.actor)).toEqual([bob.id, alice.id, bob.id, alice.id]);
});

test("the worker's and the relay's changes, and any made without the api, are system's", async () => {
  const completed = await createPayout(api);
  await moveTo(database, completed.id, "COMPLETED");
  const failed = await createPayout(api);
  await moveTo(database, failed.id, "FAILED");
  const admin = (await api.keys.authenticate(`Bearer ${await api.key()}`))?.id ?? "no admin key";
  expect(await actors(completed.id)).toEqual([
    ["payout.created", admin],
    ["payout.processing", "system"],
    ["payout.completed", "system"],
  ]);
  expect((await actors(failed.id)).slice(1)).toEqual([
    ["payout.processing", "system"],
    ["payout.failed", "system"],
  ]);
  const inserted = Bun.randomUUIDv7();
  await run(sql`INSERT INTO payouts (id, amount, currency, recipient_details) VALUES (${inserted}, 1, 'EUR', 'x')`);
  expect(await actors(inserted)).toEqual([["payout.created", "system"]]);
});

test("the setting ends with its statement: the next statement on the same connection is system's", async () => {
  const pid = async () => (await query<{ pid: number }>(database, sql`SELECT pg_backend_pid() AS pid`))[0]?.pid;
  const id = (await createPayout(api)).id;
  const before = await pid();
  expect((await api.request("PATCH", `/api/payouts/${id}/`, { comment: "by alice" }, as(alice))).status).toBe(200);
  // The claim a worker sharing this pool would run next, on the very connection the PATCH used.
  await moveTo(database, id, "PROCESSING");
  expect(await pid()).toBe(before);
  expect((await actors(id)).slice(1)).toEqual([
    ["payout.updated", alice.id],
    ["payout.processing", "system"],
  ]);
  expect(await query(database, sql`SELECT current_setting('payouts.actor', true) AS actor`)).toEqual([{ actor: "" }]);

  // What the test guards against: a session-wide setting would have named alice here.
  const leaked = (await createPayout(api)).id;
  await run(sql`SELECT set_config('payouts.actor', ${alice.id}, false)`);
  try {
    await moveTo(database, leaked, "PROCESSING");
  } finally {
    await run(sql`SELECT set_config('payouts.actor', '', false)`);
  }
  expect((await actors(leaked)).slice(1)).toEqual([["payout.processing", alice.id]]);
});

test("a refused update or delete records nothing and leaves no actor behind", async () => {
  const id = (await createPayout(api)).id;
  await moveTo(database, id, "COMPLETED");
  expect((await api.request("PATCH", `/api/payouts/${id}/`, { status: "CANCELLED" }, as(bob))).status).toBe(409);
  expect((await api.request("DELETE", `/api/payouts/${id}/`, undefined, as(bob))).status).toBe(409);
  await run(sql`UPDATE payouts SET comment = 'operator' WHERE id = ${id}`);
  expect((await actors(id)).slice(3)).toEqual([["payout.updated", "system"]]);
});

test("one batch of creates from two keys names each payout's own key", async () => {
  // Hold the first statements on a table lock, so that the creates arriving meanwhile wait for
  // the next batch together: one INSERT carries rows of both keys.
  await Promise.all([
    api.request("GET", "/api/payouts/", undefined, as(alice)),
    api.request("GET", "/api/payouts/", undefined, as(bob)),
  ]);
  const release = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const holder = watcher.db.transaction(async (tx) => {
    await tx.execute(sql`LOCK TABLE payouts IN SHARE MODE`);
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  const keys = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? alice : bob));
  const responses = Promise.all(keys.map((key) => api.request("POST", "/api/payouts/", validBody, as(key))));
  await eventually(async () => {
    const [waiting] = await query<{ n: number }>(
      watcher,
      sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'insert into "payouts"%'`,
    );
    return (waiting?.n ?? 0) > 0;
  });
  release.resolve();
  await holder;
  const created = await responses;
  const events = await query<{ payout_id: string; actor: string; created_at: string }>(
    database,
    sql`SELECT payout_id::text, actor, created_at::text FROM payout_events
        WHERE payout_id IN ${created.map((r) => r.body.id)} AND type = 'payout.created'`,
  );
  const actorOf = new Map(events.map((e) => [e.payout_id, e.actor]));
  expect(created.map((r) => actorOf.get(r.body.id))).toEqual(keys.map((key) => key.id));
  // The events of one statement share its instant: some statement held rows of both keys.
  const byStatement = Map.groupBy(events, (e) => e.created_at);
  expect([...byStatement.values()].some((rows) => new Set(rows.map((e) => e.actor)).size === 2)).toBe(true);
});

test("a revoked key's id still resolves, and the events it made keep naming it", async () => {
  const carol = await newKey("carol");
  const id = (await api.request("POST", "/api/payouts/", validBody, as(carol))).body.id;
  expect((await api.request("DELETE", `/api/keys/${carol.id}/`)).status).toBe(204);
  const read = await api.request("GET", `/api/keys/${carol.id}/`);
  expect(read.status).toBe(200);
  expect(read.body).toMatchObject({ id: carol.id, name: "carol" });
  expect(read.body.revoked_at).not.toBeNull();
  expect(await actors(id)).toEqual([["payout.created", carol.id]]);
});
