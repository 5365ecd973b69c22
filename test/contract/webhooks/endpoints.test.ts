// Webhook endpoints as clients manage them: the secret shown only on create and rotate, the URL
// rules (SSRF included), and every bad request a 400 problem+json that changes nothing.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { EVENT_TYPES } from "../../../src/events/model";
import { parseKey } from "../../../src/keys/secret";
import { PLAIN_HTTP } from "../../../src/webhooks/addresses";
import { fanOut } from "../../../src/webhooks/delivery/fanout";
import { createKey, LOCAL_WEBHOOKS, testApi, testBox } from "../../kit/api";
import { resetDatabase, testDatabase } from "../../kit/db";
import { expectProblem, expectValidationProblem, query } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database); // WEBHOOK_ALLOW_PRIVATE_NETWORKS and WEBHOOK_ALLOW_HTTP are false by default
const local = testApi(database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 86_400_000 } });
beforeEach(() => resetDatabase(database));

const PUBLIC_URL = "https://93.184.216.34/hooks/payouts";
const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;

async function endpointRows() {
  return query<Record<string, unknown>>(
    database,
    sql`SELECT id, url, event_types::text[] AS event_types, description, enabled, disabled_reason, secret,
               previous_secret, updated_at FROM webhook_endpoints ORDER BY id`,
  );
}

async function create(body: Record<string, unknown> = {}) {
  const response = await api.request("POST", "/api/webhook-endpoints/", { url: PUBLIC_URL, ...body });
  expect(response.status).toBe(201);
  return response.body as { id: string; secret: string; [field: string]: unknown };
}

describe("create, read, list", () => {
  test("create answers 201 with the endpoint, its defaults, its secret and its Location", async () => {
    const response = await api.request("POST", "/api/webhook-endpoints/", { url: PUBLIC_URL });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      url: PUBLIC_URL,
      event_types: [...EVENT_TYPES],
      description: "",
      enabled: true,
      disabled_reason: null,
      created_at: expect.stringMatching(/Z$/),
      created_by: parseKey((await api.key()) as string)?.id,
      updated_at: expect.stringMatching(/Z$/),
      updated_by: parseKey((await api.key()) as string)?.id,
      secret: expect.stringMatching(SECRET),
    });
    expect(Buffer.from(response.body.secret.slice(6), "base64")).toHaveLength(32);
    expect(response.headers.get("location")).toBe(`/api/webhook-endpoints/${response.body.id}/`);
  });

  test("the secret is in no GET and no list, only in the create response", async () => {
    const created = await create({ event_types: ["payout.completed"], description: "ERP" });
    const { secret, ...shown } = created;
    const read = await api.request("GET", `/api/webhook-endpoints/${created.id}/`);
    expect(read.body).toEqual(shown);
    const list = await api.request("GET", "/api/webhook-endpoints/");
    expect(list.body).toEqual({ results: [shown], next_cursor: null });
    expect(read.text).not.toContain(secret);
    expect(list.text).not.toContain(secret);
  });

  test("the list is newest first and follows its cursor", async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await create({ description: `${i}` })).id);
    const first = await api.request("GET", "/api/webhook-endpoints/?limit=2");
    expect(first.body.results.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    const next = await api.request("GET", `/api/webhook-endpoints/?cursor=${first.body.next_cursor}`);
    expect(next.body.results.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(next.body.next_cursor).toBeNull();
  });
});

describe("change, rotate, delete", () => {
  test("PATCH changes the fields given; enabled: false gives a reason, enabled: true clears it", async () => {
    const { id } = await create();
    const off = await api.request("PATCH", `/api/webhook-endpoints/${id}/`, { enabled: false, description: "paused" });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: "disabled by a client", description: "paused" });
    await database.db.execute(sql`UPDATE webhook_endpoints SET consecutive_failures = 3 WHERE id = ${id}`);
    const on = await api.request("PATCH", `/api/webhook-endpoints/${id}/`, { enabled: true });
    expect(on.body).toMatchObject({ enabled: true, disabled_reason: null, description: "paused" });
    const [row] = await query<{ n: number }>(
      database,
      sql`SELECT consecutive_failures AS n FROM webhook_endpoints WHERE id = ${id}`,
    );
    expect(row?.n).toBe(0);
  });

  test("rotate-secret answers a new secret and keeps the previous one for the overlap", async () => {
    const created = await create();
    const rotated = await api.request("POST", `/api/webhook-endpoints/${created.id}/rotate-secret/`);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ secret: expect.stringMatching(SECRET) });
    expect(rotated.body.secret).not.toBe(created.secret);
    // Stored sealed: each opens, for this endpoint only, to what the answers showed once.
    const [row] = await endpointRows();
    const box = testBox();
    expect(box.open(row?.secret as string, created.id)).toBe(rotated.body.secret);
    expect(box.open(row?.previous_secret as string, created.id)).toBe(created.secret);
    const read = await api.request("GET", `/api/webhook-endpoints/${created.id}/`);
    expect(read.text).not.toContain(rotated.body.secret);
  });

  test("DELETE removes the endpoint and its deliveries: 204, then 404", async () => {
    const { id } = await create();
    await database.db.execute(
      sql`INSERT INTO payouts (id, amount, currency, recipient_details) VALUES (gen_random_uuid(), 1, 'RUB', 'x')`,
    );
    await fanOut(database.db);
    const [before] = await query<{ n: number }>(database, sql`SELECT count(*)::int AS n FROM webhook_deliveries`);
    expect(before?.n).toBe(1);
    expect((await api.request("DELETE", `/api/webhook-endpoints/${id}/`)).status).toBe(204);
    const notFound = { status: 404, title: "Not found", code: "not_found", detail: "no such webhook endpoint" };
    expectProblem(await api.request("GET", `/api/webhook-endpoints/${id}/`), notFound);
    expectProblem(await api.request("GET", `/api/webhook-endpoints/${id}/deliveries/`), notFound);
    const [after] = await query<{ n: number }>(database, sql`SELECT count(*)::int AS n FROM webhook_deliveries`);
    expect(after?.n).toBe(0);
  });
});

describe("URL rules", () => {
  // Loopback, private, link-local (cloud metadata), unique-local, unspecified; IPv4 and IPv6,
  // IPv4-mapped IPv6, other spellings of 127.0.0.1, and a host name that resolves to loopback.
  const refused = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://2130706433/hook",
    "https://0x7f.1/hook",
    "https://localhost:8000/hook",
  ];
  for (const url of refused) {
    test(`${url} is refused by default, on create and on update, and nothing is stored`, async () => {
      const created = await api.request("POST", "/api/webhook-endpoints/", { url });
      expect(created.status).toBe(400);
      expect(created.body.errors).toEqual([
        { field: "url", message: expect.stringMatching(/^must not point to a loopback, private, link-local/) },
      ]);
      const { id } = await create();
      const before = await endpointRows();
      const updated = await api.request("PATCH", `/api/webhook-endpoints/${id}/`, { url });
      expect(updated.status).toBe(400);
      expect(await endpointRows()).toEqual(before);
    });
  }

  test("plain http is refused by default, on create and on update, naming the rule; nothing is stored", async () => {
    const url = "http://93.184.216.34/hooks/payouts";
    expectValidationProblem(await api.request("POST", "/api/webhook-endpoints/", { url }), [
      { field: "url", message: PLAIN_HTTP },
    ]);
    const { id } = await create();
    const before = await endpointRows();
    expectValidationProblem(await api.request("PATCH", `/api/webhook-endpoints/${id}/`, { url }), [
      { field: "url", message: PLAIN_HTTP },
    ]);
    expect(await endpointRows()).toEqual(before);
    expect(PLAIN_HTTP).toMatch(/^must be an https URL/);
  });

  test("with WEBHOOK_ALLOW_HTTP=true, http is allowed; public addresses only, unless private networks are allowed too", async () => {
    const http = testApi(database, { webhooks: { allowPrivateNetworks: false, allowHttp: true, secretOverlapMs: 0 } });
    expect((await http.request("POST", "/api/webhook-endpoints/", { url: "http://93.184.216.34/hooks" })).status).toBe(
      201,
    );
    expect((await http.request("POST", "/api/webhook-endpoints/", { url: "http://127.0.0.1:9/hook" })).status).toBe(
      400,
    );
  });

  test("with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true, loopback and private addresses are allowed", async () => {
    for (const url of ["http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook"]) {
      expect((await local.request("POST", "/api/webhook-endpoints/", { url })).status).toBe(201);
    }
  });
});

describe("bad input is a 400 problem+json and changes nothing", () => {
  const bodies: [string, unknown, { field: string; message: string }[]][] = [
    ["no url", {}, [{ field: "url", message: "is required" }]],
    ["ftp", { url: "ftp://93.184.216.34/" }, [{ field: "url", message: "must be an absolute https URL" }]],
    ["a relative url", { url: "/hooks" }, [{ field: "url", message: "must be an absolute https URL" }]],
    [
      "user info",
      { url: "https://user:pass@93.184.216.34/" },
      [{ field: "url", message: "must not contain user information" }],
    ],
    [
      "a url over 2048 characters",
      { url: `https://93.184.216.34/${"a".repeat(2048)}` },
      [{ field: "url", message: "must be at most 2048 characters" }],
    ],
    [
      "an unknown event type",
      { url: PUBLIC_URL, event_types: ["payout.paid"] },
      [
        {
          field: "event_types/0",
          message: expect.stringMatching(/^must be one of payout.created/) as unknown as string,
        },
      ],
    ],
    ["no event type", { url: PUBLIC_URL, event_types: [] }, [{ field: "event_types", message: expect.any(String) }]],
    [
      "a repeated event type",
      { url: PUBLIC_URL, event_types: ["payout.failed", "payout.failed"] },
      [{ field: "event_types", message: expect.any(String) }],
    ],
    [
      "a long description",
      { url: PUBLIC_URL, description: "x".repeat(256) },
      [{ field: "description", message: "must be at most 255 characters" }],
    ],
    ["enabled as a string", { url: PUBLIC_URL, enabled: "yes" }, [{ field: "enabled", message: expect.any(String) }]],
    ["a secret", { url: PUBLIC_URL, secret: "whsec_x" }, [{ field: "secret", message: "is read-only" }]],
    ["an unknown field", { url: PUBLIC_URL, colour: "red" }, [{ field: "colour", message: "is not a known field" }]],
  ];
  for (const [name, body, errors] of bodies) {
    test(`create with ${name}`, async () => {
      expectValidationProblem(await api.request("POST", "/api/webhook-endpoints/", body), errors);
      expect(await endpointRows()).toEqual([]);
    });
  }

  test("update with no field, an unknown field or a bad value; not JSON; a non-UUID id", async () => {
    const { id } = await create();
    const before = await endpointRows();
    const path = `/api/webhook-endpoints/${id}/`;
    expectValidationProblem(await api.request("PATCH", path, {}), [
      { field: "", message: "at least one field must be given" },
    ]);
    expectValidationProblem(await api.request("PATCH", path, { id: "x" }), [{ field: "id", message: "is read-only" }]);
    expect((await api.request("PATCH", path, "{", { "content-type": "application/json" })).status).toBe(400);
    expect((await api.request("PATCH", path, "enabled=true", { "content-type": "text/plain" })).status).toBe(415);
    expect((await api.request("PATCH", "/api/webhook-endpoints/42/", { enabled: false })).status).toBe(404);
    expect(await endpointRows()).toEqual(before);
  });

  test("bad query parameters on the lists", async () => {
    const { id } = await create();
    expectValidationProblem(
      await api.request("GET", "/api/webhook-endpoints/?limit=0&enabled=true"),
      [
        { field: "limit", message: "must be a whole number from 1 to 200" },
        { field: "enabled", message: "is not a known query parameter" },
      ],
      "query parameter",
    );
    expectValidationProblem(
      await api.request("GET", `/api/webhook-endpoints/${id}/deliveries/?status=done`),
      [{ field: "status", message: "must be one of pending, succeeded, failed" }],
      "query parameter",
    );
  });

  test("rotate and retry on what does not exist are 404s that change nothing", async () => {
    const { id } = await create();
    const before = await endpointRows();
    expect((await api.request("POST", "/api/webhook-endpoints/nope/rotate-secret/")).status).toBe(404);
    expect(
      (await api.request("POST", `/api/webhook-endpoints/${id}/deliveries/0193b6c2-9c30-7c3a-9a51-2f0c8e6d4b13/retry/`))
        .status,
    ).toBe(404);
    expect((await api.request("POST", `/api/webhook-endpoints/${id}/deliveries/nope/retry/`)).status).toBe(404);
    expect(await endpointRows()).toEqual(before);
  });
});

describe("who did it", () => {
  test("created_by and updated_by name the API key of each change; they cannot be set", async () => {
    const creator = parseKey((await api.key()) as string)?.id;
    const { id } = await create();
    const other = await createKey(database, ["webhooks:manage"], "other");
    const otherId = parseKey(other)?.id;
    const patched = await api.request(
      "PATCH",
      `/api/webhook-endpoints/${id}/`,
      { description: "x" },
      {
        authorization: `Bearer ${other}`,
      },
    );
    expect(patched.body).toMatchObject({ created_by: creator, updated_by: otherId });
    await api.request("POST", `/api/webhook-endpoints/${id}/rotate-secret/`);
    expect((await api.request("GET", `/api/webhook-endpoints/${id}/`)).body).toMatchObject({
      created_by: creator,
      updated_by: creator,
    });
    expectValidationProblem(await api.request("PATCH", `/api/webhook-endpoints/${id}/`, { updated_by: "me" }), [
      { field: "updated_by", message: "is read-only" },
    ]);
  });
});

describe("secrets at rest", () => {
  test("a dump of webhook_endpoints after create and rotate holds no secret in clear", async () => {
    const shown: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await create();
      shown.push(created.secret);
      const rotated = await api.request("POST", `/api/webhook-endpoints/${created.id}/rotate-secret/`);
      shown.push(rotated.body.secret);
    }
    const dump = JSON.stringify(await query(database, sql`SELECT * FROM webhook_endpoints`));
    expect(dump).not.toContain("whsec_");
    for (const secret of shown) {
      // Neither the secret nor its key bytes, in any of their encodings.
      const key = Buffer.from(secret.slice("whsec_".length), "base64");
      for (const form of [secret, key.toString("base64"), key.toString("base64url"), key.toString("hex")]) {
        expect(dump).not.toContain(form);
      }
    }
    // Sealed with the first key of WEBHOOK_SECRET_KEYS: its id is stored with each one.
    const rows = await endpointRows();
    for (const row of rows) {
      expect(row.secret).toMatch(/^v1:test:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
      expect(row.previous_secret).toMatch(/^v1:test:/);
    }
  });

  test("a sealed secret opens only on its own endpoint's row", async () => {
    const a = await create();
    const b = await create();
    const [rowA] = await query<{ secret: string }>(
      database,
      sql`SELECT secret FROM webhook_endpoints WHERE id = ${a.id}`,
    );
    expect(() => testBox().open(rowA?.secret as string, b.id)).toThrow(/does not open/);
    expect(testBox().open(rowA?.secret as string, a.id)).toBe(a.secret);
  });
});
