// The keys API behind the bearer plugin, on a small app of its own over the run's PostgreSQL:
// secrets shown once, scopes and escalation, roll overlaps, revocation on this and another
// replica, the 401s alike, and no secret in the database or in any log line at debug level.
import { afterAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { Elysia } from "elysia";
import { resultRows } from "../../../src/db/client";
import { HttpProblem, problemResponse, toProblem } from "../../../src/http/problem";
import { requestLog } from "../../../src/http/request-log";
import { bearerAuth, callerOf } from "../../../src/keys/auth";
import { BOOTSTRAP, SCOPES, type Scope } from "../../../src/keys/model";
import { keyRoutes } from "../../../src/keys/routes";
import { type KeyService, keyService } from "../../../src/keys/service";
import { type Clock, systemClock } from "../../../src/lib/clock";
import { createLogger } from "../../../src/lib/log";
import { testDatabase } from "../../kit/db";
import { eventually } from "../../kit/wait";

const lines: string[] = [];
const log = createLogger("debug", "json", {}, (line) => lines.push(line));
const database = testDatabase();
const { db } = database;

/** Every secret this file saw: issued ones and wrong ones presented. None may be stored or logged. */
const secrets: string[] = [];
const secretOf = (key: string) => {
  const secret = key.slice(-43);
  secrets.push(secret);
  return key;
};

/** The app the coordinator will build, reduced to the keys feature and one payouts route. */
function keysApp(keys: KeyService) {
  const requests = requestLog(log);
  return new Elysia()
    .use(requests.plugin)
    .onError(({ code, error, request, set }) => {
      let response: Response;
      if (code === "NOT_FOUND") {
        response = problemResponse({ status: 404, code: "not_found", title: "Not found", detail: "no route" });
      } else if (code === "PARSE" && error.cause instanceof HttpProblem) {
        response = problemResponse(error.cause.problem);
      } else {
        response = toProblem(error, log, {});
      }
      requests.answered(request, "", undefined, response, set);
      return response;
    })
    .use(
      bearerAuth({
        keys,
        answered: (request, response) => requests.answered(request, "", undefined, response, { headers: {} }),
      }),
    )
    .use(keyRoutes(keys))
    .get("/api/payouts/", ({ request }) => ({ caller: callerOf(request).id }));
}

// biome-ignore lint/suspicious/noExplicitAny: tests read whatever the body holds
type Answer = { status: number; headers: Headers; text: string; body: any };

async function call(
  app: { handle: (request: Request) => Promise<Response> },
  method: string,
  path: string,
  key?: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const sent: Record<string, string> = { ...headers };
  if (key !== undefined) sent.authorization = `Bearer ${key}`;
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === "string" ? body : JSON.stringify(body);
    sent["content-type"] ??= "application/json";
  }
  const response = await app.handle(
    new Request(`http://payouts.test${path}`, { method, headers: sent, body: payload }),
  );
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

const keys = keyService({ db, clock: systemClock, log }, { cacheTtlMs: 1000 });
const app = keysApp(keys);

async function makeKey(scopes: Scope[], name = "test", by: KeyService = keys) {
  const created = await by.create({ name, scopes }, BOOTSTRAP);
  secretOf(created.secret);
  return created;
}

const admin = await makeKey([...SCOPES], "admin");

afterAll(async () => {
  await keys.stop();
  await database.close();
});

describe("create, read, list", () => {
  test("the secret is in the create answer only: never in a read or a list", async () => {
    const created = await call(app, "POST", "/api/keys/", admin.secret, {
      name: "  ERP export  ",
      scopes: ["payouts:read", "events:read"],
    });
    expect(created.status).toBe(201);
    const { secret, ...key } = created.body;
    secretOf(secret);
    expect(secret).toMatch(new RegExp(`^pk_${key.id}_[0-9A-Za-z]{43}$`));
    expect(created.headers.get("location")).toBe(`/api/keys/${key.id}/`);
    expect(key).toMatchObject({
      name: "ERP export",
      scopes: ["payouts:read", "events:read"],
      created_by: admin.id,
      expires_at: null,
      last_used_at: null,
      revoked_at: null,
    });

    const read = await call(app, "GET", `/api/keys/${key.id}/`, admin.secret);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(key);
    const list = await call(app, "GET", "/api/keys/?limit=200", admin.secret);
    expect(list.body.results).toContainEqual(key);
    for (const text of [read.text, list.text]) {
      expect(text).not.toContain(secret.slice(-43));
      expect(text).not.toContain('"secret"');
    }

    // The new key works, with its scopes only.
    expect((await call(app, "GET", "/api/payouts/", secret)).body).toEqual({ caller: key.id });
    const refused = await call(app, "GET", "/api/keys/", secret);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: "missing_scope", scope: "keys:manage" });
  });

  test("the list is newest first and cursor paged", async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await makeKey(["events:read"], `paged ${i}`));
    const first = await call(app, "GET", "/api/keys/?limit=2", admin.secret);
    expect(first.body.results.map((k: { id: string }) => k.id)).toEqual([made[2]?.id, made[1]?.id]);
    const second = await call(app, "GET", `/api/keys/?cursor=${first.body.next_cursor}`, admin.secret);
    expect(second.body.results[0].id).toBe(made[0]?.id);
    expect((await call(app, "GET", "/api/keys/?limit=0", admin.secret)).status).toBe(400);
  });

  test("invalid bodies are a 400 naming each field, once authenticated", async () => {
    const answer = await call(app, "POST", "/api/keys/", admin.secret, {
      name: " ",
      scopes: ["payouts:read", "payouts:admin"],
      expires_at: "yesterday",
      secret: "mine",
    });
    expect(answer.status).toBe(400);
    expect(answer.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(
      ["expires_at", "name", "scopes/1", "secret"].sort(),
    );
    const past = await call(app, "POST", "/api/keys/", admin.secret, {
      name: "late",
      scopes: ["payouts:read"],
      expires_at: "2020-01-01T00:00:00Z",
    });
    expect(past.status).toBe(400);
    expect(past.body.errors).toEqual([{ field: "expires_at", message: "must be in the future" }]);
    expect((await call(app, "GET", "/api/keys/not-a-uuid/", admin.secret)).status).toBe(404);
    expect((await call(app, "GET", `/api/keys/${crypto.randomUUID()}/`, admin.secret)).status).toBe(404);
  });
});

describe("scopes", () => {
  test("a key cannot create a key with a scope it does not hold: 403 naming it, nothing made", async () => {
    const manager = await makeKey(["keys:manage", "payouts:read"]);
    const before = await call(app, "GET", "/api/keys/?limit=200", admin.secret);
    const refused = await call(app, "POST", "/api/keys/", manager.secret, {
      name: "escalate",
      scopes: ["payouts:read", "payouts:write"],
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: "missing_scope", scope: "payouts:write", title: "Missing scope" });
    expect(refused.body.detail).toContain("payouts:write");
    const after = await call(app, "GET", "/api/keys/?limit=200", admin.secret);
    expect(after.body.results).toHaveLength(before.body.results.length);

    const allowed = await call(app, "POST", "/api/keys/", manager.secret, { name: "less", scopes: ["payouts:read"] });
    expect(allowed.status).toBe(201);
    secretOf(allowed.body.secret);
    expect(allowed.body.created_by).toBe(manager.id);
  });

  test("a key without the route's scope is a 403 naming it, before its body is read", async () => {
    const reader = await makeKey(["payouts:read"]);
    const answer = await call(app, "POST", "/api/keys/", reader.secret, "{not json");
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ code: "missing_scope", scope: "keys:manage" });
  });
});

describe("roll", () => {
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };
  // A long cache: its entries must still end where the overlap ends.
  const timed = keyService({ db, clock, log }, { cacheTtlMs: 60_000 });
  const timedApp = keysApp(timed);
  const replica = keyService({ db, clock, log }, { cacheTtlMs: 60_000 });
  const replicaApp = keysApp(replica);
  const works = async (target: typeof app, key: string) => (await call(target, "GET", "/api/payouts/", key)).status;

  test("the old secret works until the overlap ends, the new one at once; same id and scopes", async () => {
    const key = await makeKey(["payouts:read", "events:read"]);
    expect(await works(timedApp, key.secret)).toBe(200);
    const rolled = await call(timedApp, "POST", `/api/keys/${key.id}/roll`, admin.secret, { expires_in_ms: 10_000 });
    expect(rolled.status).toBe(200);
    const fresh = secretOf(rolled.body.secret);
    expect(fresh).not.toBe(key.secret);
    expect(rolled.body).toMatchObject({ id: key.id, scopes: key.scopes, rolled_by: admin.id });
    expect(Date.parse(rolled.body.previous_secret_expires_at) - clock.now()).toBeWithin(9_000, 10_001);

    expect(await works(timedApp, key.secret)).toBe(200);
    expect(await works(timedApp, fresh)).toBe(200);
    // The replica verifies the old secret during the overlap and caches it, but only until the overlap's end.
    expect(await works(replicaApp, key.secret)).toBe(200);

    offset += 10_001;
    expect(await works(timedApp, key.secret)).toBe(401);
    expect(await works(replicaApp, key.secret)).toBe(401);
    expect(await works(timedApp, fresh)).toBe(200);
  });

  test("expires_in_ms 0 stops the old secret at once; no body is the default day", async () => {
    const key = await makeKey(["payouts:read"]);
    const now = await call(timedApp, "POST", `/api/keys/${key.id}/roll`, admin.secret, { expires_in_ms: 0 });
    expect(now.body.previous_secret_expires_at).toBeNull();
    secretOf(now.body.secret);
    expect(await works(timedApp, key.secret)).toBe(401);
    expect(await works(timedApp, now.body.secret)).toBe(200);

    const byDefault = await call(timedApp, "POST", `/api/keys/${key.id}/roll`, admin.secret);
    expect(byDefault.status).toBe(200);
    secretOf(byDefault.body.secret);
    expect(Date.parse(byDefault.body.previous_secret_expires_at) - clock.now()).toBeWithin(86_399_000, 86_400_001);
    expect(await works(timedApp, now.body.secret)).toBe(200);

    const invalid = await call(timedApp, "POST", `/api/keys/${key.id}/roll`, admin.secret, { expires_in_ms: -1 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors[0].field).toBe("expires_in_ms");
  });

  test("rolling needs every scope of the key (the answer hands it over); a revoked key cannot be rolled", async () => {
    const powerful = await makeKey(["payouts:write", "payouts:read"]);
    const manager = await makeKey(["keys:manage", "payouts:read"]);
    const refused = await call(timedApp, "POST", `/api/keys/${powerful.id}/roll`, manager.secret, {});
    expect(refused.status).toBe(403);
    expect(refused.body.scope).toBe("payouts:write");
    expect(await works(timedApp, powerful.secret)).toBe(200);

    expect((await call(timedApp, "DELETE", `/api/keys/${powerful.id}/`, admin.secret)).status).toBe(204);
    const revoked = await call(timedApp, "POST", `/api/keys/${powerful.id}/roll`, admin.secret, {});
    expect(revoked.status).toBe(409);
    expect(revoked.body.code).toBe("key_conflict");
  });

  test("an expired key is refused from its expiry on, also from the cache", async () => {
    const key = await timed.create(
      { name: "short", scopes: ["payouts:read"], expires_at: new Date(clock.now() + 5_000) },
      BOOTSTRAP,
    );
    secretOf(key.secret);
    expect(await works(timedApp, key.secret)).toBe(200);
    offset += 5_000;
    expect(await works(timedApp, key.secret)).toBe(401);
  });
});

describe("revoke", () => {
  test("401 at once on this replica, within the cache's TTL on another; the id still resolves", async () => {
    const ttl = 1000;
    const replica = keyService({ db, clock: systemClock, log }, { cacheTtlMs: ttl });
    const replicaApp = keysApp(replica);
    const key = await makeKey(["payouts:read"]);
    expect((await call(app, "GET", "/api/payouts/", key.secret)).status).toBe(200);
    expect((await call(replicaApp, "GET", "/api/payouts/", key.secret)).status).toBe(200);

    const revokedAt = performance.now();
    expect((await call(app, "DELETE", `/api/keys/${key.id}/`, admin.secret)).status).toBe(204);
    expect((await call(app, "GET", "/api/payouts/", key.secret)).status).toBe(401);
    await eventually(
      async () => (await call(replicaApp, "GET", "/api/payouts/", key.secret)).status === 401,
      10_000,
      20,
    );
    const took = performance.now() - revokedAt;
    expect(took).toBeLessThan(ttl + 500);

    const read = await call(app, "GET", `/api/keys/${key.id}/`, admin.secret);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: key.id, revoked_by: admin.id });
    expect(read.body.revoked_at).not.toBeNull();
    // Again: nothing changes.
    expect((await call(app, "DELETE", `/api/keys/${key.id}/`, admin.secret)).status).toBe(204);
    expect((await call(app, "GET", `/api/keys/${key.id}/`, admin.secret)).body).toEqual(read.body);
    await replica.stop();
  });

  test("a key cannot revoke itself (409) and keeps working", async () => {
    const manager = await makeKey(["keys:manage"]);
    const answer = await call(app, "DELETE", `/api/keys/${manager.id}/`, manager.secret);
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({ code: "key_conflict" });
    expect((await call(app, "GET", "/api/keys/", manager.secret)).status).toBe(200);
    expect((await call(app, "DELETE", `/api/keys/${crypto.randomUUID()}/`, manager.secret)).status).toBe(404);
  });
});

describe("the cache", () => {
  test("a cached key costs no database read: it is accepted with the database gone, until its entry ends", async () => {
    const own = testDatabase(1);
    const cached = keyService({ db: own.db, clock: systemClock, log }, { cacheTtlMs: 1500 });
    const key = await makeKey(["payouts:read"]);
    expect(await cached.authenticate(`Bearer ${key.secret}`)).toEqual({ id: key.id, scopes: ["payouts:read"] });
    await own.close();
    // No connection is left to read the row with: only the cache can answer.
    expect(await cached.authenticate(`Bearer ${key.secret}`)).toEqual({ id: key.id, scopes: ["payouts:read"] });
    // A wrong key is never cached: it needs the database, which is gone.
    expect(cached.authenticate(`Bearer ${key.secret.slice(0, -1)}x`)).rejects.toThrow();
    await eventually(
      async () =>
        cached.authenticate(`Bearer ${key.secret}`).then(
          () => false,
          () => true,
        ),
      5_000,
      50,
    );
  });

  test("last_used_at: written by a flush, not per request, and at most once per flush interval", async () => {
    const key = await makeKey(["payouts:read"]);
    const lastUsed = async () => {
      const rows = resultRows<{ at: string | null }>(
        await db.execute(sql`SELECT last_used_at::text AS at FROM api_keys WHERE id = ${key.id}`),
      );
      return rows[0]?.at ?? null;
    };
    for (let i = 0; i < 5; i++) expect((await call(app, "GET", "/api/payouts/", key.secret)).status).toBe(200);
    expect(await lastUsed()).toBeNull();
    await keys.flush();
    const first = await lastUsed();
    expect(first).not.toBeNull();
    expect(Date.now() - Date.parse(first as string)).toBeLessThan(5_000);
    // Used again within the interval (30 s): the stored value is recent enough, nothing is written.
    await Bun.sleep(5);
    expect((await call(app, "GET", "/api/payouts/", key.secret)).status).toBe(200);
    await keys.flush();
    expect(await lastUsed()).toBe(first);

    // A service stopping writes what it holds.
    const other = keyService({ db, clock: systemClock, log }, { cacheTtlMs: 0, lastUsedFlushMs: 1 });
    const second = await makeKey(["payouts:read"]);
    expect(await other.authenticate(`Bearer ${second.secret}`)).toBeDefined();
    await other.stop();
    const rows = resultRows<{ at: string | null }>(
      await db.execute(sql`SELECT last_used_at::text AS at FROM api_keys WHERE id = ${second.id}`),
    );
    expect(rows[0]?.at).not.toBeNull();
  });
});

describe("401", () => {
  test("missing, malformed, unknown, wrong, expired and revoked keys get the same answer", async () => {
    const key = await makeKey(["payouts:read"]);
    const expiring = await keys.create(
      { name: "expiring", scopes: ["payouts:read"], expires_at: new Date(Date.now() + 300) },
      BOOTSTRAP,
    );
    secretOf(expiring.secret);
    const revoked = await makeKey(["payouts:read"]);
    await keys.revoke(revoked.id, BOOTSTRAP);
    await eventually(async () => Date.now() > Date.parse(expiring.expires_at as string), 2_000, 20);

    const wrong = secretOf(`${key.secret.slice(0, -43)}${"A".repeat(43)}`);
    const unknown = secretOf(`pk_${Bun.randomUUIDv7()}_${key.secret.slice(-43)}`);
    const cases = {
      missing: await call(app, "GET", "/api/payouts/"),
      malformed: await call(app, "GET", "/api/payouts/", "pk_nope"),
      "another scheme": await call(app, "GET", "/api/payouts/", undefined, undefined, {
        authorization: `Basic ${btoa("a:b")}`,
      }),
      unknown: await call(app, "GET", "/api/payouts/", unknown),
      wrong: await call(app, "GET", "/api/payouts/", wrong),
      expired: await call(app, "GET", "/api/payouts/", expiring.secret),
      revoked: await call(app, "GET", "/api/payouts/", revoked.secret),
    };
    for (const [name, answer] of Object.entries(cases)) {
      expect({ name, status: answer.status }).toEqual({ name, status: 401 });
      expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="payouts"');
      expect(answer.headers.get("content-type")).toBe("application/problem+json");
      expect(answer.text).toBe(cases.missing.text);
    }
    expect(cases.missing.body).toEqual({
      type: "about:blank",
      title: "Unauthorized",
      status: 401,
      code: "unauthorized",
      detail: "a valid API key is required: Authorization: Bearer <key>",
    });
  });

  test("authentication comes first: no body shape, no id, no route is told to a caller without a key", async () => {
    const unknownId = `/api/keys/${crypto.randomUUID()}/`;
    for (const [method, path, body, headers] of [
      ["POST", "/api/keys/", "{not json", {}],
      ["POST", "/api/keys/", "x", { "content-type": "text/plain" }],
      ["POST", "/api/keys/", { name: 1 }, {}],
      ["GET", unknownId, undefined, {}],
      ["GET", "/api/keys/not-a-uuid/", undefined, {}],
      ["PUT", "/api/keys/", undefined, {}],
      ["GET", "/api/nothing-here/", undefined, {}],
      ["GET", "/", undefined, {}],
    ] as const) {
      const answer = await call(app, method, path, "pk_nope", body, headers);
      expect({ method, path, status: answer.status }).toEqual({ method, path, status: 401 });
    }
    // The open paths are not guarded: this app has no /health route, so it is the router's 404.
    expect((await call(app, "GET", "/health/live")).status).toBe(404);
  });

  test("unknown id, wrong secret, expired and revoked take the same time within noise", async () => {
    const key = await makeKey(["payouts:read"]);
    const expired = await keys.create(
      { name: "expired", scopes: ["payouts:read"], expires_at: new Date(Date.now() + 100) },
      BOOTSTRAP,
    );
    secretOf(expired.secret);
    const revoked = await makeKey(["payouts:read"]);
    await keys.revoke(revoked.id, BOOTSTRAP);
    await Bun.sleep(150);
    const tokens = {
      unknown: `pk_${Bun.randomUUIDv7()}_${"B".repeat(43)}`,
      wrong: `${key.secret.slice(0, -43)}${"B".repeat(43)}`,
      expired: expired.secret,
      revoked: revoked.secret,
    };
    secretOf(tokens.unknown);
    secretOf(tokens.wrong);
    const samples: Record<string, number[]> = { unknown: [], wrong: [], expired: [], revoked: [] };
    const entries = Object.entries(tokens);
    for (let round = 0; round < 200; round++) {
      // Interleaved, each first in turn: a burst of load on the machine falls on every case alike.
      for (const [name, token] of [...entries.slice(round % 4), ...entries.slice(0, round % 4)]) {
        const started = performance.now();
        const caller = await keys.authenticate(`Bearer ${token}`);
        (samples[name] as number[]).push(performance.now() - started);
        expect(caller).toBeUndefined();
      }
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1] as number;
    const medians = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
    console.log("401 medians (ms):", medians);
    const values = Object.values(medians);
    // Each is one read by primary key, one hash and two comparisons: the same work.
    expect(Math.max(...values) - Math.min(...values)).toBeLessThan(0.5 * Math.min(...values) + 0.2);
  });
});

describe("no secret at rest or in logs", () => {
  test("the api_keys table, dumped, holds no secret", async () => {
    const dump = resultRows<{ row: string }>(await db.execute(sql`SELECT t::text AS row FROM api_keys AS t`))
      .map((r) => r.row)
      .join("\n");
    expect(dump).toContain(admin.id);
    expect(secrets.length).toBeGreaterThan(20);
    for (const secret of secrets) expect(dump).not.toContain(secret);
  });

  test("no log line at debug level holds a secret", () => {
    expect(lines.some((line) => line.includes('"api key created"'))).toBe(true);
    expect(lines.some((line) => line.includes('"request"'))).toBe(true);
    for (const line of lines) for (const secret of secrets) expect(line).not.toContain(secret);
  });
});
