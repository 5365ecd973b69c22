// Access control on the app the roles serve (testApi: the same guard, features and document): the
// scope matrix read from the served document, the 401s alike on a real route, authentication
// before validation, escalation and roll overlaps through the HTTP API.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { connectPostgres } from "../../../src/db/client";
import { SCOPES, type Scope } from "../../../src/keys/model";
import { bearer, createKey, testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { validBody } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);
const UNKNOWN = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON read by the tests
type Json = any;
let operations: { method: string; path: string; scope: Scope }[] = [];
const only = new Map<Scope, string>();
const allBut = new Map<Scope, string>();

beforeAll(async () => {
  const doc: Json = (await api.request("GET", "/swagger/json")).body;
  operations = Object.entries<Json>(doc.paths)
    .filter(([path]) => path.startsWith("/api/"))
    .flatMap(([path, item]) =>
      Object.entries<Json>(item).map(([method, op]) => ({
        method: method.toUpperCase(),
        path: path.replace(/\{[^}]+\}/g, UNKNOWN),
        scope: op["x-scopes"][0],
      })),
    );
  for (const scope of SCOPES) {
    only.set(scope, await createKey(database, [scope]));
    allBut.set(
      scope,
      await createKey(
        database,
        SCOPES.filter((s) => s !== scope),
      ),
    );
  }
});

describe("the scope matrix, every /api operation of the served document", () => {
  test("a key with exactly its scope passes the guard; one with every other scope is a 403 naming it", async () => {
    // Every documented operation, the 405 ones too: a route added later is in the document, so here.
    expect(operations.length).toBeGreaterThan(80);
    for (const { method, path, scope } of operations) {
      const allowed = await api.request(method, path, undefined, bearer(only.get(scope) as string));
      expect({ method, path, passed: ![401, 403].includes(allowed.status) }).toEqual({ method, path, passed: true });
      const refused = await api.request(method, path, undefined, bearer(allBut.get(scope) as string));
      expect({ method, path, status: refused.status, code: refused.body?.code, scope: refused.body?.scope }).toEqual({
        method,
        path,
        status: 403,
        code: "missing_scope",
        scope,
      });
    }
  }, 60_000);
});

describe("401", () => {
  test("missing, malformed, unknown id, wrong secret, expired and revoked: one answer, WWW-Authenticate: Bearer", async () => {
    const valid = await createKey(database, ["payouts:read"]);
    const expired = await createKey(database, ["payouts:read"]);
    const revoked = await createKey(database, ["payouts:read"]);
    const idOf = (key: string) => key.split("_")[1] as string;
    await database.db.execute(
      sql`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ${idOf(expired)}`,
    );
    expect((await api.request("DELETE", `/api/keys/${idOf(revoked)}/`)).status).toBe(204);
    const wrongSecret = `${valid.slice(0, -43)}${"A".repeat(43)}`;
    const unknownId = `pk_${UNKNOWN}_${valid.slice(-43)}`;
    const cases: [string, Record<string, string>][] = [
      ["missing", {}],
      ["malformed", { authorization: "Bearer not-a-key" }],
      ["another scheme", { authorization: `Basic ${btoa("user:pass")}` }],
      ["unknown id", bearer(unknownId)],
      ["wrong secret", bearer(wrongSecret)],
      ["expired", bearer(expired)],
      ["revoked", bearer(revoked)],
    ];
    const keyless = testApi(database, { key: null });
    const answers = [];
    for (const [name, headers] of cases) {
      const response = await keyless.request("GET", "/api/payouts/", undefined, headers);
      answers.push({
        name,
        status: response.status,
        wwwAuthenticate: response.headers.get("www-authenticate"),
        contentType: response.headers.get("content-type"),
        body: response.body,
      });
    }
    const expected = {
      status: 401,
      wwwAuthenticate: 'Bearer realm="payouts"',
      contentType: "application/problem+json",
      body: {
        type: "about:blank",
        title: "Unauthorized",
        status: 401,
        code: "unauthorized",
        detail: "a valid API key is required: Authorization: Bearer <key>",
      },
    };
    expect(answers).toEqual(cases.map(([name]) => ({ name, ...expected })));
    // The same key, valid, is let through: the 401s above are the key's, not the route's.
    expect((await keyless.request("GET", "/api/payouts/", undefined, bearer(valid))).status).toBe(200);
  });

  test("with the database out of reach, a key not in the cache is a 503 to retry, never a 401", async () => {
    const down = connectPostgres("postgres://postgres@127.0.0.1:1/none", 1, "t");
    try {
      const key = await createKey(database, ["payouts:read"]);
      const response = await testApi(down, { key }).request("GET", "/api/payouts/");
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(response.body.code).toBe("database_unavailable");
    } finally {
      await down.close();
    }
  });

  test("authentication comes before validation: a bad body, an unknown id, a missing route tell nothing", async () => {
    const keyless = testApi(database, { key: null });
    const unauthenticated = [
      await keyless.request("POST", "/api/payouts/", "{not json"),
      await keyless.request("POST", "/api/payouts/", { ...validBody, amount: "-1" }),
      await keyless.request("POST", "/api/payouts/", "x".repeat(70_000)),
      await keyless.request("POST", "/api/payouts/", validBody, { "content-type": "text/plain" }),
      await keyless.request("GET", `/api/payouts/${UNKNOWN}/`),
      await keyless.request("GET", "/api/payouts/not-a-uuid/"),
      await keyless.request("PUT", "/api/payouts/"),
      await keyless.request("GET", "/api/no-such-route/"),
    ];
    expect(unauthenticated.map((r) => r.status)).toEqual(unauthenticated.map(() => 401));
    // Open paths stay open.
    for (const path of ["/health/live", "/health/ready", "/swagger", "/swagger/json", "/metrics"]) {
      expect({ path, status: (await keyless.request("GET", path)).status }).toEqual({ path, status: 200 });
    }
    // With a key lacking the scope: 403, still before the body is read.
    const reader = only.get("payouts:read") as string;
    const refused = await keyless.request("POST", "/api/payouts/", "{not json", bearer(reader));
    expect(refused.body).toMatchObject({ status: 403, scope: "payouts:write" });
  });
});

describe("the keys API through the app", () => {
  test("a key cannot grant a scope it does not hold: 403 naming it, nothing made", async () => {
    const manager = await createKey(database, ["keys:manage", "payouts:read"]);
    const before = (await database.db.execute(sql`SELECT count(*)::int AS n FROM api_keys`)) as Json;
    const escalation = await api.request(
      "POST",
      "/api/keys/",
      { name: "escalation", scopes: ["payouts:read", "payouts:write"] },
      bearer(manager),
    );
    expect(escalation.status).toBe(403);
    expect(escalation.body).toMatchObject({ code: "missing_scope", scope: "payouts:write" });
    const after = (await database.db.execute(sql`SELECT count(*)::int AS n FROM api_keys`)) as Json;
    expect(JSON.stringify(after)).toBe(JSON.stringify(before));
    const granted = await api.request(
      "POST",
      "/api/keys/",
      { name: "reader", scopes: ["payouts:read"] },
      bearer(manager),
    );
    expect(granted.status).toBe(201);
    expect(granted.body.created_by).toBe(manager.split("_")[1]);
    expect((await api.request("GET", "/api/payouts/", undefined, bearer(granted.body.secret))).status).toBe(200);
  });

  test("a roll's overlap: old and new secrets work until it ends; 0 stops the old at once", async () => {
    const made = await api.request("POST", "/api/keys/", { name: "rolled", scopes: ["payouts:read"] });
    const { id, secret: first } = made.body;
    const read = async (key: string) => (await api.request("GET", "/api/payouts/", undefined, bearer(key))).status;
    expect(await read(first)).toBe(200);
    const rolled = await api.request("POST", `/api/keys/${id}/roll`, { expires_in_ms: 60_000 });
    expect(rolled.status).toBe(200);
    const second = rolled.body.secret as string;
    expect(second).not.toBe(first);
    expect([await read(first), await read(second)]).toEqual([200, 200]);
    const again = await api.request("POST", `/api/keys/${id}/roll`, { expires_in_ms: 0 });
    const third = again.body.secret as string;
    // The secret before the roll stops at once on this replica; the one before it had its overlap
    // replaced by this roll's (none).
    expect([await read(first), await read(second), await read(third)]).toEqual([401, 401, 200]);
  });

  test("a key cannot revoke itself: 409, and it keeps working", async () => {
    const admin = await api.key();
    const self = (admin as string).split("_")[1];
    const response = await api.request("DELETE", `/api/keys/${self}/`);
    expect(response.status).toBe(409);
    expect((await api.request("GET", "/api/keys/")).status).toBe(200);
  });
});
