// The served OpenAPI document describes every answer the server gives, as judged by a validating
// proxy nobody here wrote: Stoplight Prism (`prism proxy`, a devDependency) stands in front of the
// api, and requests reaching every operation and every status it documents go through it.
//
// Prism forwards each request and checks the request and the response against the document; it
// lists what disagrees in an `sl-violations` header (a JSON array, each entry's `location` starting
// with "request" or "response"). It runs without `--errors`: with it, Prism answers a request the
// document refuses itself (422) instead of forwarding it, so the server's own 400, 413 and 415 could
// not be checked. So the test asserts that no response has a response violation, that a request the
// document refuses has a request violation (Prism did judge it) and any other has none, and that
// each response is the server's (it echoes the request's X-Request-Id).
//
// Prism is a Node.js program and runs on the machine's Node (under Bun, its HTTP client could not
// forward a TRACE).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Subprocess, spawn } from "bun";
import { sql } from "drizzle-orm";
import { SCOPES } from "../../../src/keys/model";
import { fanOut } from "../../../src/webhooks/delivery/fanout";
import { bearer, createKey, LOCAL_WEBHOOKS, testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { createPayout, validBody } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";

const database = testDatabase(5);
const api = testApi(database, { webhooks: { ...LOCAL_WEBHOOKS, secretOverlapMs: 86_400_000 } });
const PRISM = join(import.meta.dir, "../../../node_modules/@stoplight/prism-cli/dist/index.js");

// What the traffic here does not make happen: a bug (500) and a database out of reach (503, 504;
// test/faults plays those through a TCP proxy).
const NOT_SENT_HERE = new Set(["500", "503", "504"]);

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON read by the test
type Json = any;
type Violation = { location: string[]; severity: string; message: string };

let doc: Json;
let dir: string;
let prism: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let prismUrl = "";
let prismLog = "";
let prismLogRead: Promise<void> = Promise.resolve();

beforeAll(async () => {
  api.app.listen({ hostname: "127.0.0.1", port: 0 });
  doc = (await api.request("GET", "/swagger/json")).body;
  dir = await mkdtemp(join(tmpdir(), "payouts-prism-"));
  const file = join(dir, "openapi.json");
  await Bun.write(file, JSON.stringify(doc));
  prism = spawn(
    ["node", PRISM, "proxy", file, `http://127.0.0.1:${api.app.server?.port}`, "--port", "0", "--cors=false"],
    { stdout: "pipe", stderr: "pipe" },
  );
  // Its log is read to the end (a full pipe would stall it); the first line with an address says it listens.
  const decoder = new TextDecoder();
  const { stdout } = prism;
  prismLogRead = (async () => {
    for await (const chunk of stdout) prismLog += decoder.decode(chunk);
  })();
  prismUrl = await eventually(
    async () => {
      if (prism?.exitCode !== null) throw new Error(`prism exited: ${prismLog}${await prism?.stderr.text()}`);
      return prismLog.match(/Prism is listening on (http:\/\/\S+)/)?.[1];
    },
    // Node and Prism take seconds to start, over 20 s on a loaded machine.
    60_000,
    20,
  );
}, 90_000);

afterAll(async () => {
  prism?.kill();
  await prism?.exited;
  await prismLogRead;
  await api.app.stop();
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

/** Which documented operation and status each exchange reached: "GET /api/payouts/{id}/" -> {"200", "404"}. */
const reached = new Map<string, Set<string>>();
let sent = 0;

type Send = {
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** The document refuses this request (Prism must say so); the server answers it all the same. */
  refused?: boolean;
  /** The API key sent: the admin key (every scope) unless given; null sends none. */
  key?: string | null;
  /**
   * The guard answers before the body is read: whether the document would refuse the rest of the
   * request is not this exchange's question (only its response is checked).
   */
  guardAnswers?: boolean;
};

/** One request through Prism to the operation `method template`; checks the exchange and records what it reached. */
async function send(method: string, template: string, status: number, options: Send = {}) {
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => options.params?.[name] ?? `missing-${name}`);
  const requestId = `prism-${++sent}`;
  const apiKey = options.key === undefined ? await api.key() : options.key;
  const headers: Record<string, string> = {
    "x-request-id": requestId,
    ...(apiKey === null ? {} : bearer(apiKey)),
    ...options.headers,
  };
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${prismUrl}${path}${options.query ? `?${options.query}` : ""}`, {
    method,
    headers,
    body,
  });
  const text = await response.text();
  const exchange = `${method} ${path}${options.query ? `?${options.query}` : ""} -> ${response.status} ${text.slice(0, 300)}`;
  const header = response.headers.get("sl-violations");
  let violations: Violation[] = [];
  if (header !== null) {
    try {
      violations = JSON.parse(header);
    } catch {
      throw new Error(`${exchange}: sl-violations is not a JSON array: ${header.slice(0, 300)}`);
    }
  }
  const where = (side: string) =>
    violations.filter((v) => v.location[0] === side).map((v) => `${v.location.join(".")}: ${v.message}`);
  expect({ exchange, responseViolations: where("response") }).toEqual({ exchange, responseViolations: [] });
  if (options.guardAnswers) {
    // The request's own shape is not judged: see Send.guardAnswers.
  } else if (options.refused)
    expect({ exchange, requestViolations: where("request").length > 0 }).toMatchObject({ requestViolations: true });
  else expect({ exchange, requestViolations: where("request") }).toEqual({ exchange, requestViolations: [] });
  // The server's own answer, to this request: Prism's answers carry no X-Request-Id.
  expect({ exchange, requestId: response.headers.get("x-request-id") }).toEqual({ exchange, requestId });
  expect({ exchange, status: response.status }).toEqual({ exchange, status });
  const key = `${method} ${template}`;
  reached.set(key, (reached.get(key) ?? new Set()).add(String(status)));
  let json: Json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { headers: response.headers, body: json };
}

const PAYOUT = "/api/payouts/{id}/";
const ENDPOINT = "/api/webhook-endpoints/{endpoint_id}/";
const DELIVERIES = "/api/webhook-endpoints/{endpoint_id}/deliveries/";
const RETRY = "/api/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry/";
const UNKNOWN = "0190a7b2-0000-7000-8000-000000000000";
const tooLarge = { ...validBody, comment: "x".repeat(70_000) };

test("through Prism, every documented operation and status: no response the document does not describe", async () => {
  await send("GET", "/health/live", 200);
  await send("GET", "/health/ready", 200);

  // Webhook endpoints first, so that the payouts below leave deliveries to list and retry.
  const hook = await send("POST", "/api/webhook-endpoints/", 201, {
    body: { url: "http://127.0.0.1:9/hooks", description: "prism", event_types: ["payout.created", "payout.updated"] },
  });
  const endpointId = hook.body.id as string;
  await send("POST", "/api/webhook-endpoints/", 201, { body: { url: "http://127.0.0.1:9/other" } });
  await send("POST", "/api/webhook-endpoints/", 400, { body: { description: "no url" }, refused: true });
  await send("POST", "/api/webhook-endpoints/", 413, {
    body: { url: `http://127.0.0.1/${"x".repeat(70_000)}` },
    refused: true,
  });
  await send("POST", "/api/webhook-endpoints/", 415, {
    body: JSON.stringify({ url: "http://127.0.0.1:9/hooks" }),
    headers: { "content-type": "text/plain" },
    refused: true,
  });
  const endpoints = await send("GET", "/api/webhook-endpoints/", 200, { query: "limit=1" });
  await send("GET", "/api/webhook-endpoints/", 200, { query: `cursor=${endpoints.body.next_cursor}` });
  await send("GET", "/api/webhook-endpoints/", 400, { query: "limit=0", refused: true });
  await send("GET", ENDPOINT, 200, { params: { endpoint_id: endpointId } });
  await send("GET", ENDPOINT, 404, { params: { endpoint_id: UNKNOWN } });
  await send("PATCH", ENDPOINT, 200, { params: { endpoint_id: endpointId }, body: { description: "renamed" } });
  await send("PATCH", ENDPOINT, 400, { params: { endpoint_id: endpointId }, body: { enabled: "yes" }, refused: true });
  await send("PATCH", ENDPOINT, 404, { params: { endpoint_id: UNKNOWN }, body: { description: "x" } });
  await send("PATCH", ENDPOINT, 413, {
    params: { endpoint_id: endpointId },
    body: { description: "x".repeat(70_000) },
    refused: true,
  });
  await send("PATCH", ENDPOINT, 415, {
    params: { endpoint_id: endpointId },
    body: JSON.stringify({ description: "x" }),
    headers: { "content-type": "text/plain" },
    refused: true,
  });
  await send("POST", `${ENDPOINT}rotate-secret/`, 200, { params: { endpoint_id: endpointId } });
  await send("POST", `${ENDPOINT}rotate-secret/`, 404, { params: { endpoint_id: UNKNOWN } });

  // Payouts: created, replayed, refused, listed with filters and cursors, changed, cancelled, deleted.
  const created = await send("POST", "/api/payouts/", 201, { body: validBody });
  const id = created.body.id as string;
  await send("POST", "/api/payouts/", 201, { body: { ...validBody, currency: "EUR", amount: 10.5 } });
  const key = { "idempotency-key": `prism-${Bun.randomUUIDv7()}` };
  await send("POST", "/api/payouts/", 201, { body: validBody, headers: key });
  const replay = await send("POST", "/api/payouts/", 201, { body: validBody, headers: key });
  expect(replay.headers.get("idempotent-replayed")).toBe("true");
  await send("POST", "/api/payouts/", 422, { body: { ...validBody, amount: "1.00" }, headers: key });
  await send("POST", "/api/payouts/", 400, { body: { ...validBody, amount: "-1" }, refused: true });
  await send("POST", "/api/payouts/", 400, {
    body: validBody,
    headers: { "idempotency-key": "two words" },
    refused: true,
  });
  await send("POST", "/api/payouts/", 413, { body: tooLarge, refused: true });
  await send("POST", "/api/payouts/", 415, {
    body: JSON.stringify(validBody),
    headers: { "content-type": "text/plain" },
    refused: true,
  });
  const page = await send("GET", "/api/payouts/", 200, { query: "currency=RUB&status=NEW&limit=1" });
  expect(page.body.next_cursor).toEqual(expect.any(String));
  await send("GET", "/api/payouts/", 200, { query: `cursor=${encodeURIComponent(page.body.next_cursor)}` });
  await send("GET", "/api/payouts/", 200, {
    query: "created_after=2020-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z",
  });
  await send("GET", "/api/payouts/", 400, { query: "limit=0", refused: true });
  await send("GET", "/api/payouts/", 400, { query: "status=LOST", refused: true });
  await send("GET", PAYOUT, 200, { params: { id } });
  await send("GET", PAYOUT, 404, { params: { id: UNKNOWN } });
  await send("PATCH", PAYOUT, 200, { params: { id }, body: { comment: "edited" } });
  await send("PATCH", PAYOUT, 400, { params: { id }, body: { amount: "0" }, refused: true });
  await send("PATCH", PAYOUT, 404, { params: { id: UNKNOWN }, body: { comment: "x" } });
  await send("PATCH", PAYOUT, 413, { params: { id }, body: { comment: "x".repeat(70_000) }, refused: true });
  await send("PATCH", PAYOUT, 415, {
    params: { id },
    body: JSON.stringify({ comment: "x" }),
    headers: { "content-type": "text/plain" },
    refused: true,
  });
  await send("PATCH", PAYOUT, 200, { params: { id }, body: { status: "CANCELLED" } });
  await send("PATCH", PAYOUT, 409, { params: { id }, body: { status: "CANCELLED" } });
  const processing = (await createPayout(api)).id;
  // Claimed as the worker claims (one attempt), so that its processing event names attempt 1.
  await database.db.execute(sql`UPDATE payouts SET status = 'PROCESSING', attempts = 1 WHERE id = ${processing}`);
  await send("DELETE", PAYOUT, 409, { params: { id: processing } });
  await send("DELETE", PAYOUT, 204, { params: { id } });
  await send("DELETE", PAYOUT, 404, { params: { id } });

  // The audit trail: a payout's history (its events outlive it) and the feed of every event.
  const history = await send("GET", `${PAYOUT}events/`, 200, { params: { id }, query: "limit=2" });
  await send("GET", `${PAYOUT}events/`, 200, { params: { id }, query: `cursor=${history.body.next_cursor}` });
  await send("GET", `${PAYOUT}events/`, 400, { params: { id }, query: "limit=0", refused: true });
  await send("GET", `${PAYOUT}events/`, 404, { params: { id: UNKNOWN } });
  const feed = await send("GET", "/api/events/", 200, { query: `type=payout.created&payout_id=${processing}` });
  expect(feed.body.results).toHaveLength(1);
  const events = await send("GET", "/api/events/", 200, {
    query: "limit=1&created_after=2020-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z",
  });
  await send("GET", "/api/events/", 200, { query: `cursor=${events.body.next_cursor}` });
  await send("GET", "/api/events/", 400, { query: "type=payout.lost", refused: true });

  // Deliveries: the endpoint subscribed to created and updated events of the payouts above, made
  // by the worker's fan-out.
  while ((await fanOut(database.db)).events > 0);
  const deliveries = await eventually(async () => {
    const r = await send("GET", DELIVERIES, 200, {
      params: { endpoint_id: endpointId },
      query: "status=pending&limit=1",
    });
    return r.body.next_cursor && r;
  });
  const cursor = deliveries.body.next_cursor;
  await send("GET", DELIVERIES, 200, { params: { endpoint_id: endpointId }, query: `cursor=${cursor}` });
  // A cursor continues its own list: with other filters it is a 400 the document allows.
  await send("GET", DELIVERIES, 400, { params: { endpoint_id: endpointId }, query: `status=failed&cursor=${cursor}` });
  await send("GET", DELIVERIES, 400, { params: { endpoint_id: endpointId }, query: "status=lost", refused: true });
  await send("GET", DELIVERIES, 404, { params: { endpoint_id: UNKNOWN } });
  const deliveryId = deliveries.body.results[0].id as string;
  await send("POST", RETRY, 202, { params: { endpoint_id: endpointId, delivery_id: deliveryId } });
  await send("POST", RETRY, 404, { params: { endpoint_id: endpointId, delivery_id: UNKNOWN } });
  await send("DELETE", ENDPOINT, 204, { params: { endpoint_id: endpointId } });
  await send("DELETE", ENDPOINT, 404, { params: { endpoint_id: endpointId } });

  // API keys: made, listed, read, rolled and revoked (the admin key holds keys:manage).
  const KEY = "/api/keys/{id}/";
  const made = await send("POST", "/api/keys/", 201, { body: { name: "prism", scopes: ["payouts:read"] } });
  const keyId = made.body.id as string;
  await send("POST", "/api/keys/", 400, { body: { name: "prism", scopes: ["payouts:steal"] }, refused: true });
  await send("POST", "/api/keys/", 413, { body: { name: "x".repeat(70_000), scopes: [] }, refused: true });
  await send("POST", "/api/keys/", 415, {
    body: JSON.stringify({ name: "prism", scopes: ["payouts:read"] }),
    headers: { "content-type": "text/plain" },
    refused: true,
  });
  const keyPage = await send("GET", "/api/keys/", 200, { query: "limit=1" });
  await send("GET", "/api/keys/", 200, { query: `cursor=${keyPage.body.next_cursor}` });
  await send("GET", "/api/keys/", 400, { query: "limit=0", refused: true });
  await send("GET", KEY, 200, { params: { id: keyId } });
  await send("GET", KEY, 404, { params: { id: UNKNOWN } });
  await send("POST", `${KEY}roll`, 200, { params: { id: keyId }, body: { expires_in_ms: 0 } });
  await send("POST", `${KEY}roll`, 400, { params: { id: keyId }, body: { expires_in_ms: -1 }, refused: true });
  await send("POST", `${KEY}roll`, 404, { params: { id: UNKNOWN } });
  await send("POST", `${KEY}roll`, 413, { params: { id: keyId }, body: { pad: "x".repeat(70_000) }, refused: true });
  await send("POST", `${KEY}roll`, 415, {
    params: { id: keyId },
    body: JSON.stringify({ expires_in_ms: 0 }),
    headers: { "content-type": "text/plain" },
    refused: true,
  });
  const adminId = (await send("GET", "/api/keys/", 200, {})).body.results.find(
    (k: Json) => k.name === "test admin" && k.revoked_at === null,
  ).id as string;
  await send("DELETE", KEY, 409, { params: { id: adminId } });
  await send("DELETE", KEY, 204, { params: { id: keyId } });
  await send("POST", `${KEY}roll`, 409, { params: { id: keyId } });
  await send("DELETE", KEY, 404, { params: { id: UNKNOWN } });

  // The guard, on every operation of every /api path (the 405 ones too: it answers before the
  // router): 401 without a key, 403 with a key holding every scope but the one it needs.
  const lacking = new Map<string, string>();
  for (const scope of SCOPES)
    lacking.set(
      scope,
      await createKey(
        database,
        SCOPES.filter((s) => s !== scope),
      ),
    );
  const guardParams = { id: keyId, endpoint_id: UNKNOWN, delivery_id: UNKNOWN };
  for (const [template, operations] of Object.entries<Json>(doc.paths)) {
    if (!template.startsWith("/api/")) continue;
    for (const [method, operation] of Object.entries<Json>(operations)) {
      const [scope] = operation["x-scopes"];
      await send(method.toUpperCase(), template, 401, { params: guardParams, key: null, guardAnswers: true });
      const refused = await send(method.toUpperCase(), template, 403, {
        params: guardParams,
        key: lacking.get(scope) as string,
        guardAnswers: true,
      });
      // A TRACE answer's body does not come back through Prism; the scope is checked on the others.
      if (method !== "trace")
        expect({ method, template, scope: refused.body?.scope }).toEqual({ method, template, scope });
    }
  }

  // Every method the document answers with 405 (and its Allow), on each of its paths.
  const params = { id: processing, endpoint_id: UNKNOWN, delivery_id: UNKNOWN };
  for (const [template, operations] of Object.entries<Json>(doc.paths)) {
    for (const [method, operation] of Object.entries<Json>(operations)) {
      if (operation.responses["405"]) await send(method.toUpperCase(), template, 405, { params });
    }
  }

  // Each operation was reached with each status it documents, but those not made to happen here.
  const missing = Object.entries<Json>(doc.paths).flatMap(([template, operations]) =>
    Object.entries<Json>(operations).flatMap(([method, operation]) =>
      Object.keys(operation.responses)
        .filter((status) => !NOT_SENT_HERE.has(status))
        .filter((status) => !reached.get(`${method.toUpperCase()} ${template}`)?.has(status))
        .map((status) => `${method.toUpperCase()} ${template} ${status}`),
    ),
  );
  expect(missing).toEqual([]);
  // Prism logged the same: no response it found outside the document.
  expect(prismLog).not.toMatch(/Violation: response/);
}, 30_000);
