// Idempotency-Key on POST /api/payouts/: a retried request never makes a second payout.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { countRows, expectProblem, expectValidationProblem, query, validBody } from "../../kit/fixtures";

const database = testDatabase(10);
afterAll(() => database.close());
const api = testApi(database);

let keyNumber = 0;
const freshKey = () => `key-${process.pid}-${Date.now()}-${++keyNumber}`;

beforeEach(() => {
  api.handedOff.length = 0;
});

const post = (body: unknown, key?: string) =>
  api.request("POST", "/api/payouts/", body, key === undefined ? {} : { "idempotency-key": key });

const payoutsWithKey = async (key: string) =>
  (
    await query(
      database,
      sql`SELECT p.id FROM payouts p JOIN idempotency_keys k ON k.payout_id = p.id WHERE k.key = ${key}`,
    )
  ).length;

describe("replay", () => {
  test("the same key with the same body replays the first response and creates nothing", async () => {
    const key = freshKey();
    const first = await post(validBody, key);
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(api.handedOff).toEqual([first.body.id]);
    const payoutsAfterFirst = await countRows(database, "payouts");

    const again = await post(validBody, key);
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(again.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(await countRows(database, "payouts")).toBe(payoutsAfterFirst);
    expect(await payoutsWithKey(key)).toBe(1);
    expect(api.handedOff).toEqual([first.body.id]);
  });

  test("a replay returns the first response even after the payout changed", async () => {
    const key = freshKey();
    const first = await post(validBody, key);
    await api.request("PATCH", `/api/payouts/${first.body.id}/`, { comment: "changed later" });
    const again = await post(validBody, key);
    expect(again.body).toEqual(first.body);
  });

  test("a key stays bound to its first response after the payout is deleted", async () => {
    const key = freshKey();
    const first = await post(validBody, key);
    expect((await api.request("DELETE", `/api/payouts/${first.body.id}/`)).status).toBe(204);
    const payoutsBefore = await countRows(database, "payouts");
    const again = await post(validBody, key);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    expect(api.handedOff).toEqual([first.body.id]);
  });

  test('amount 10.5 and "10.50" are the same body (compared after normalisation)', async () => {
    const key = freshKey();
    const first = await post(`{"amount":10.5,"currency":"USD","recipient_details":"x"}`, key);
    const again = await post(`{"amount":"10.50","currency":"USD","recipient_details":"  x ","comment":""}`, key);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
  });

  test("without a key the same body creates a second payout", async () => {
    const first = await post(validBody);
    const second = await post(validBody);
    expect(second.status).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
    expect(api.handedOff).toEqual([first.body.id, second.body.id]);
  });

  test("keys are case-sensitive: another spelling is another key", async () => {
    const key = freshKey();
    const first = await post(validBody, `${key}-a`);
    const second = await post(validBody, `${key}-A`);
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.headers.get("idempotent-replayed")).toBeNull();
  });
});

describe("reuse with another body", () => {
  test("the same key with a different body is a 422 and creates nothing", async () => {
    const key = freshKey();
    const first = await post(validBody, key);
    const payoutsBefore = await countRows(database, "payouts");
    const keysBefore = await countRows(database, "idempotency_keys");

    const other = await post({ ...validBody, amount: "1500.01" }, key);
    expectProblem(other, {
      status: 422,
      title: "Idempotency key reused",
      code: "idempotency_key_reused",
      detail: "this Idempotency-Key was first used with a different request body; nothing was created",
    });
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    expect(await countRows(database, "idempotency_keys")).toBe(keysBefore);
    expect(api.handedOff).toEqual([first.body.id]);

    const replay = await post(validBody, key);
    expect(replay.body).toEqual(first.body);
  });

  for (const [field, value] of [
    ["currency", "USD"],
    ["recipient_details", "someone else"],
    ["comment", "a comment"],
  ] as const) {
    test(`a different ${field} under the same key is a 422`, async () => {
      const key = freshKey();
      await post(validBody, key);
      expect((await post({ ...validBody, [field]: value }, key)).status).toBe(422);
    });
  }

  test("an invalid body under a used key is a 400 and does not touch the key", async () => {
    const key = freshKey();
    const first = await post(validBody, key);
    expect((await post({ ...validBody, amount: "abc" }, key)).status).toBe(400);
    expect((await post(validBody, key)).body).toEqual(first.body);
  });
});

describe("concurrency", () => {
  test("25 requests with the same key at once create exactly one payout and answer identically", async () => {
    const key = freshKey();
    const payoutsBefore = await countRows(database, "payouts");
    const responses = await Promise.all(Array.from({ length: 25 }, () => post(validBody, key)));

    expect(responses.map((r) => r.status)).toEqual(Array(25).fill(201));
    const first = responses[0]?.body;
    for (const response of responses) {
      expect(response.text).toBe(responses[0]?.text as string);
      expect(response.headers.get("location")).toBe(`/api/payouts/${first.id}/`);
    }
    expect(responses.filter((r) => r.headers.get("idempotent-replayed") === null)).toHaveLength(1);
    expect(await countRows(database, "payouts")).toBe(payoutsBefore + 1);
    expect(await payoutsWithKey(key)).toBe(1);
    expect(api.handedOff).toEqual([first.id]);
  });

  test("concurrent requests with the same key and different bodies create one payout; the others get 422", async () => {
    const key = freshKey();
    const payoutsBefore = await countRows(database, "payouts");
    const bodies = Array.from({ length: 20 }, (_, i) => ({ ...validBody, amount: `${i + 1}.00` }));
    const responses = await Promise.all(bodies.map((body) => post(body, key)));

    const created = responses.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    expect(responses.filter((r) => r.status === 422)).toHaveLength(19);
    expect(await countRows(database, "payouts")).toBe(payoutsBefore + 1);
    expect(api.handedOff).toEqual([created[0]?.body.id]);
  });
});

describe("each API key has its own Idempotency-Keys", () => {
  const newKey = (name: string) => api.keys.create({ name, scopes: ["payouts:read", "payouts:write"] }, "bootstrap");
  const postAs = (secret: string, body: unknown, key: string) =>
    api.request("POST", "/api/payouts/", body, { "idempotency-key": key, authorization: `Bearer ${secret}` });

  test("two API keys sending the same value with different bodies get two payouts, each replaying only its own", async () => {
    const [alice, bob] = await Promise.all([newKey("alice"), newKey("bob")]);
    const key = freshKey();
    const aliceBody = { ...validBody, amount: "11.00" };
    const bobBody = { ...validBody, amount: "22.00" };
    const fromAlice = await postAs(alice.secret, aliceBody, key);
    const fromBob = await postAs(bob.secret, bobBody, key);
    for (const created of [fromAlice, fromBob]) {
      expect(created.status).toBe(201);
      expect(created.headers.get("idempotent-replayed")).toBeNull();
    }
    expect(fromBob.body.id).not.toBe(fromAlice.body.id);
    expect(fromBob.body.amount).toBe("22.00");
    expect(api.handedOff).toEqual([fromAlice.body.id, fromBob.body.id]);

    const againAlice = await postAs(alice.secret, aliceBody, key);
    expect(againAlice.headers.get("idempotent-replayed")).toBe("true");
    expect(againAlice.text).toBe(fromAlice.text);
    const againBob = await postAs(bob.secret, bobBody, key);
    expect(againBob.headers.get("idempotent-replayed")).toBe("true");
    expect(againBob.text).toBe(fromBob.text);
    // Each key's reuse with another body is still a 422: the other key's body is not its own.
    expect((await postAs(alice.secret, bobBody, key)).status).toBe(422);
    expect(await payoutsWithKey(key)).toBe(2);
  });

  test("a rolled key keeps its Idempotency-Keys: the new secret and the old one during the overlap replay", async () => {
    const carol = await newKey("carol");
    const key = freshKey();
    const first = await postAs(carol.secret, validBody, key);
    expect(first.status).toBe(201);
    const rolled = await api.request("POST", `/api/keys/${carol.id}/roll`, { expires_in_ms: 60_000 });
    expect(rolled.status).toBe(200);
    for (const secret of [rolled.body.secret, carol.secret]) {
      const again = await postAs(secret, validBody, key);
      expect(again.status).toBe(201);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(again.text).toBe(first.text);
    }
    expect(await payoutsWithKey(key)).toBe(1);
  });

  test("the same value sent at once by two API keys, ten times each, makes one payout per API key", async () => {
    const [alice, bob] = await Promise.all([newKey("alice"), newKey("bob")]);
    const key = freshKey();
    const senders = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob));
    const responses = await Promise.all(senders.map((sender) => postAs(sender.secret, validBody, key)));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(201));
    const idOf = (sender: typeof alice) =>
      new Set(responses.filter((_, i) => senders[i] === sender).map((r) => r.body.id as string));
    const [alices, bobs] = [idOf(alice), idOf(bob)];
    expect(alices.size).toBe(1);
    expect(bobs.size).toBe(1);
    expect(alices).not.toEqual(bobs);
    expect(await payoutsWithKey(key)).toBe(2);
  });
});

describe("invalid keys", () => {
  const invalid: [string, string][] = [
    ["an empty key", ""],
    ["a key of 256 characters", "k".repeat(256)],
    ["a key with a space", "my key"],
    ["a key with a tab", "my\tkey"],
    ["a key with a non-ASCII character", "cl\u00e9"],
    ["a key with a DEL character", "key\u007f"],
  ];
  for (const [name, key] of invalid) {
    test(`${name} is refused with 400 and creates nothing`, async () => {
      const payoutsBefore = await countRows(database, "payouts");
      const response = await post(validBody, key);
      expectValidationProblem(
        response,
        [{ field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters" }],
        "header",
      );
      expect(await countRows(database, "payouts")).toBe(payoutsBefore);
      expect(api.handedOff).toEqual([]);
    });
  }

  // Keys live as long as the run's database: these three are used once per run.
  for (const [name, key] of [
    ["a key of 1 character", "~"],
    ["a key of 255 characters", "k".repeat(255)],
    ["a key of every visible ASCII character", "!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~"],
  ] as const) {
    test(`${name} is accepted`, async () => {
      const response = await post(validBody, key);
      expect(response.status).toBe(201);
      expect(await payoutsWithKey(key)).toBe(1);
    });
  }
});
