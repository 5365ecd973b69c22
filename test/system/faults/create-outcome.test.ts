// What a client hears when a create's commit is in doubt, made to happen on purpose: the api's
// only connection to PostgreSQL goes through a proxy that loses the commit's reply, or holds the
// statement until its deadline has passed.
import { afterEach, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { loadConfig } from "../../../src/config";
import { connectPostgres, type Database } from "../../../src/db/client";
import { idempotencyKeys, payouts } from "../../../src/db/schema";
import { RETRY_WITH_KEY } from "../../../src/http/problem";
import { createAnswerBoundMs } from "../../../src/payouts/create";
import { testApi } from "../../kit/api";
import { databaseUrl, testDatabase } from "../../kit/db";
import { startTcpProxy, type TcpProxy } from "../../kit/proxy";
import { eventually } from "../../kit/wait";

const direct = testDatabase(2);
const { createDeadlineMs } = loadConfig({});
const body = (comment: string) => ({ amount: "10.00", currency: "EUR", recipient_details: "DE89 3704", comment });
let proxy: TcpProxy | undefined;
let proxied: Database | undefined;

afterEach(async () => {
  proxy?.heal();
  await proxied?.close();
  proxy?.stop();
});

/**
 * The api in this process on one pooled connection through a proxy, that connection opened and
 * the create statements, keyless and keyed, prepared on it (a statement's first run waits for its
 * description, which a lost reply would hold up before the statement ever ran).
 */
async function apiThroughProxy() {
  const target = new URL(databaseUrl);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  proxied = connectPostgres(url.toString(), 1, "payouts-test-outcome");
  const api = testApi(proxied);
  expect((await api.request("POST", "/api/payouts/", body("warm-up"))).status).toBe(201);
  const warmUpKey = { "idempotency-key": `warm-up-${Bun.randomUUIDv7()}` };
  expect((await api.request("POST", "/api/payouts/", body("warm-up"), warmUpKey)).status).toBe(201);
  return api;
}

const stored = (comment: string) => direct.db.select().from(payouts).where(eq(payouts.comment, comment));

test("a create whose commit's reply is lost is answered 201 by looking its id up, and stored once", async () => {
  const api = await apiThroughProxy();
  const marker = `lost-reply-${Bun.randomUUIDv7()}`;
  proxy?.loseReplies();
  const answer = api.request("POST", "/api/payouts/", body(marker));
  // The INSERT reached PostgreSQL and committed; its reply never comes back. Then the connection dies.
  const [row] = await eventually(async () => {
    const rows = await stored(marker);
    return rows.length > 0 && rows;
  });
  proxy?.resetAll();

  const response = await answer;
  expect(response.status).toBe(201);
  expect(response.body.id).toBe(row?.id);
  expect(response.headers.get("location")).toBe(`/api/payouts/${row?.id}/`);
  expect(await stored(marker)).toHaveLength(1);
});

test("a create held past its deadline is answered 504 naming its id; that id then reads 404 and nothing is stored", async () => {
  const api = await apiThroughProxy();
  const marker = `held-${Bun.randomUUIDv7()}`;
  proxy?.stall();
  const started = performance.now();
  const response = await api.request("POST", "/api/payouts/", body(marker));
  expect(performance.now() - started).toBeLessThan(createAnswerBoundMs(createDeadlineMs));
  expect(response.status).toBe(504);
  expect(response.body).toMatchObject({ status: 504, code: "create_outcome_unknown" });
  const id = response.body.payout_id as string;
  expect(response.headers.get("location")).toBe(`/api/payouts/${id}/`);
  expect(response.headers.get("retry-after")).toBe("5");

  // The network comes back and delivers the INSERT, now past its deadline: it writes nothing. The
  // pool's one connection runs the read after it, so the read sees what the INSERT did.
  proxy?.heal();
  const read = await eventually(async () => {
    const r = await api.request("GET", `/api/payouts/${id}/`);
    return r.status !== 503 && r;
  });
  expect(read.status).toBe(404);
  expect(await stored(marker)).toEqual([]);
});

// The deadline is set by the api's clock (the Clock port) and judged by the database's, inside the
// statement. An api whose clock runs behind PostgreSQL's by more than the deadline sends every
// create already late: the database writes nothing, and the client hears 503, never a 201.
for (const withKey of [false, true]) {
  test(`an api whose clock is a second more than the deadline behind the database's stores nothing and answers 503 (${withKey ? "with" : "without"} an Idempotency-Key)`, async () => {
    const behind = testApi(direct, { clock: { now: () => Date.now() - createDeadlineMs - 1000 } });
    const marker = `clock-behind-${Bun.randomUUIDv7()}`;
    const key = `clock-behind-${Bun.randomUUIDv7()}`;
    const response = await behind.request(
      "POST",
      "/api/payouts/",
      body(marker),
      withKey ? { "idempotency-key": key } : {},
    );
    expect(response.status).toBe(503);
    expect(response.body).toMatchObject({ status: 503, code: "database_unavailable" });
    // With a key, the client is told to keep the key: an earlier attempt may have created the payout.
    expect(response.body.detail.includes(RETRY_WITH_KEY)).toBe(withKey);
    expect(behind.handedOff).toEqual([]);
    expect(await stored(marker)).toEqual([]);
    expect(await direct.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, key))).toEqual([]);
    // The same api on the machine's clock creates it.
    expect((await testApi(direct).request("POST", "/api/payouts/", body(marker))).status).toBe(201);
  });
}

// With an Idempotency-Key the key decides, never the request's fresh id: an answer names the key's
// payout or none, and tells the client to retry with the same key.
const keyed = (api: ReturnType<typeof testApi>, comment: string, key: string) =>
  api.request("POST", "/api/payouts/", body(comment), { "idempotency-key": key });
const keyRow = (key: string) => direct.db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, key));

test("a keyed create whose commit's reply is lost is answered 201 by its key (not as a replay), and stored once", async () => {
  const api = await apiThroughProxy();
  const marker = `keyed-lost-reply-${Bun.randomUUIDv7()}`;
  const key = `keyed-lost-reply-${Bun.randomUUIDv7()}`;
  proxy?.loseReplies();
  const answer = keyed(api, marker, key);
  const [row] = await eventually(async () => {
    const rows = await stored(marker);
    return rows.length > 0 && rows;
  });
  proxy?.resetAll();

  const response = await answer;
  expect(response.status).toBe(201);
  expect(response.body.id).toBe(row?.id);
  expect(response.headers.get("idempotent-replayed")).toBeNull();
  expect(api.handedOff).toContain(row?.id as string);
  expect((await keyRow(key)).map((k) => k.payoutId)).toEqual([row?.id as string]);
});

test("a keyed create held past its deadline is answered 504 naming no id; the same key then creates the payout once", async () => {
  const api = await apiThroughProxy();
  const marker = `keyed-held-${Bun.randomUUIDv7()}`;
  const key = `keyed-held-${Bun.randomUUIDv7()}`;
  proxy?.stall();
  const started = performance.now();
  const response = await keyed(api, marker, key);
  expect(performance.now() - started).toBeLessThan(createAnswerBoundMs(createDeadlineMs));
  expect(response.status).toBe(504);
  expect(response.body).toEqual({
    type: "about:blank",
    title: "Outcome unknown",
    status: 504,
    code: "create_outcome_unknown",
    detail: `the database did not confirm whether the payout was created; ${RETRY_WITH_KEY}`,
  });
  expect(response.headers.get("location")).toBeNull();

  // The stalled statement arrives after its deadline and writes nothing; the retry creates it.
  proxy?.heal();
  const retried = await eventually(async () => {
    const r = await keyed(api, marker, key);
    return r.status === 201 && r;
  });
  expect(retried.headers.get("idempotent-replayed")).toBeNull();
  expect((await stored(marker)).map((p) => p.id)).toEqual([retried.body.id]);
  // And from then on the key replays it.
  const replayed = await keyed(api, marker, key);
  expect(replayed.headers.get("idempotent-replayed")).toBe("true");
  expect(replayed.body.id).toBe(retried.body.id);
});

test("a keyed retry while the database stalls names no other id than the key's payout, and replays it once healed", async () => {
  const api = await apiThroughProxy();
  const marker = `keyed-retry-${Bun.randomUUIDv7()}`;
  const key = `keyed-retry-${Bun.randomUUIDv7()}`;
  const first = await keyed(api, marker, key);
  expect(first.status).toBe(201);

  proxy?.stall();
  const during = await keyed(api, marker, key);
  // Before the fix this was a 504 naming a fresh id that never existed (issue 17).
  expect(during.status).toBe(504);
  expect(during.body.payout_id).toBeUndefined();
  expect(during.headers.get("location")).toBeNull();

  proxy?.heal();
  const after = await eventually(async () => {
    const r = await keyed(api, marker, key);
    return r.status === 201 && r;
  });
  expect(after.headers.get("idempotent-replayed")).toBe("true");
  expect(after.text).toBe(first.text);
  expect((await stored(marker)).map((p) => p.id)).toEqual([first.body.id]);
});
