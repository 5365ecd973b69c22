// One log line per request, X-Request-Id on every response, and nothing from bodies or queries.
import { afterAll, expect, test } from "bun:test";
import { createLogger, type Logger } from "../../../src/lib/log";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { eventually } from "../../kit/wait";

const database = testDatabase();
afterAll(() => database.close());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SECRET = "40817810099910004312, BIC 044525225, Ivanov I.I.";

/** The api in-process with the default settings, writing its lines to `log`. */
const appLoggingTo = (log: Logger) => testApi(database, { log });

/** The api in-process, its log lines (every level) parsed as they are written. */
function loggedApi() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const log = createLogger("debug", "json", { role: "api" }, (line) => {
    raw.push(line);
    lines.push(JSON.parse(line));
  });
  const app = appLoggingTo(log);
  const request = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = body;
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    }
    const response = await app.handle(new Request(`http://payouts.test${path}`, init));
    const text = await response.text();
    return { status: response.status, headers: response.headers, text };
  };
  /** The request lines written so far; the line is written just after the response. */
  const requestLines = async (count: number) =>
    eventually(
      async () => {
        const found = lines.filter((l) => l.msg === "request");
        return found.length >= count && found;
      },
      2000,
      1,
    );
  return { request, requestLines, lines, raw };
}

test("each request writes one line with method, route, raw path, status, duration_ms and request_id", async () => {
  const api = loggedApi();
  const response = await api.request("GET", "/api/payouts/?status=NEW&currency=USD&limit=5");
  expect(response.status).toBe(200);
  // A second request's line is the barrier: by the time it is written, any second line of the
  // first request would have been too.
  await api.request("GET", "/health/live");
  const [line, ...more] = await api.requestLines(2);
  expect(more.map((l) => l.path)).toEqual(["/health/live"]);
  expect(line).toMatchObject({
    level: "info",
    msg: "request",
    role: "api",
    method: "GET",
    route: "/api/payouts/",
    path: "/api/payouts/",
    status: 200,
    request_id: response.headers.get("x-request-id"),
  });
  expect(typeof line?.duration_ms).toBe("number");
  expect(line?.duration_ms).toBeGreaterThanOrEqual(0);
  expect(typeof line?.time).toBe("string");
});

test("a valid X-Request-Id from the client is echoed and logged", async () => {
  const api = loggedApi();
  const id = "trace-7f3a/ABC_123:x";
  const response = await api.request("GET", "/health/live", undefined, { "x-request-id": id });
  expect(response.headers.get("x-request-id")).toBe(id);
  const [line] = await api.requestLines(1);
  expect(line?.request_id).toBe(id);
});

test("without X-Request-Id, each response gets a fresh UUID", async () => {
  const api = loggedApi();
  const first = await api.request("GET", "/health/live");
  const second = await api.request("GET", "/health/live");
  expect(first.headers.get("x-request-id")).toMatch(UUID);
  expect(second.headers.get("x-request-id")).toMatch(UUID);
  expect(first.headers.get("x-request-id")).not.toBe(second.headers.get("x-request-id"));
  const lines = await api.requestLines(2);
  expect(lines.map((l) => l.request_id)).toEqual([
    first.headers.get("x-request-id"),
    second.headers.get("x-request-id"),
  ]);
});

test("an X-Request-Id that is empty, too long or not visible ASCII is replaced by a UUID", async () => {
  const api = loggedApi();
  for (const bad of ["", "x".repeat(129), "has space", "tab\there"]) {
    const response = await api.request("GET", "/health/live", undefined, { "x-request-id": bad });
    expect(response.headers.get("x-request-id")).toMatch(UUID);
  }
  const longest = "x".repeat(128);
  const response = await api.request("GET", "/health/live", undefined, { "x-request-id": longest });
  expect(response.headers.get("x-request-id")).toBe(longest);
});

test("error responses carry X-Request-Id and log their own status: 400, 404, 405, 415", async () => {
  const api = loggedApi();
  const cases: [string, string, string | undefined, Record<string, string>, number, string][] = [
    ["POST", "/api/payouts/", "{not json", {}, 400, "/api/payouts/"],
    ["GET", "/api/payouts/not-a-uuid/", undefined, {}, 404, "/api/payouts/:id/"],
    ["GET", "/no/such/path?recipient=x", undefined, {}, 404, "unmatched"],
    ["PUT", "/api/payouts/", "{}", {}, 405, "unmatched"],
    ["POST", "/api/payouts/", "amount=1", { "content-type": "text/plain" }, 415, "/api/payouts/"],
  ];
  for (const [i, [method, path, body, headers, status]] of cases.entries()) {
    const response = await api.request(method, path, body, { ...headers, "x-request-id": `err-${i}` });
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("x-request-id")).toBe(`err-${i}`);
  }
  const lines = await api.requestLines(cases.length);
  expect(lines.map((l) => [l.request_id, l.method, l.route, l.status])).toEqual(
    cases.map(([method, , , , status, route], i) => [`err-${i}`, method, route, status]),
  );
  expect(lines[2]?.path).toBe("/no/such/path");
});

test("lines about a payout carry payout_id; no line carries the body or the query's values", async () => {
  const api = loggedApi();
  const created = await api.request(
    "POST",
    "/api/payouts/",
    JSON.stringify({ amount: "12.34", currency: "RUB", recipient_details: SECRET, comment: "secret comment" }),
  );
  expect(created.status).toBe(201);
  const id = JSON.parse(created.text).id as string;
  await api.request("GET", `/api/payouts/${id}/`);
  await api.request("PATCH", `/api/payouts/${id}`, JSON.stringify({ recipient_details: `${SECRET} (new)` }));
  await api.request("GET", `/api/payouts/?created_after=2020-01-01T00:00:00Z&status=NEW`);
  await api.request("DELETE", `/api/payouts/${id}/`);

  const lines = await api.requestLines(5);
  expect(lines.map((l) => [l.method, l.route, l.status, l.payout_id])).toEqual([
    ["POST", "/api/payouts/", 201, id],
    ["GET", "/api/payouts/:id/", 200, id],
    ["PATCH", "/api/payouts/:id/", 200, id],
    ["GET", "/api/payouts/", 200, undefined],
    ["DELETE", "/api/payouts/:id/", 204, id],
  ]);
  const everything = api.raw.join("");
  for (const leaked of ["Ivanov", "044525225", "secret comment", "12.34", "created_after", "2020-01-01"]) {
    expect(everything).not.toContain(leaked);
  }
});

test("LOG_FORMAT=pretty writes one readable line per request", async () => {
  const out: string[] = [];
  const log = createLogger("info", "pretty", {}, (line) => out.push(line));
  const app = appLoggingTo(log);
  await app.handle(new Request("http://payouts.test/api/payouts/", { headers: { "x-request-id": "pretty-1" } }));
  const [line] = await eventually(async () => out.length > 0 && out, 2000, 1);
  expect(line).toMatch(
    /^\S+Z INFO {2}request request_id=pretty-1 method=GET route=\/api\/payouts\/ path=\/api\/payouts\/ status=200 duration_ms=[\d.]+\n$/,
  );
});

test("health probes are logged at debug only; other requests at info", async () => {
  const api = loggedApi();
  expect((await api.request("GET", "/health/live")).status).toBe(200);
  expect((await api.request("GET", "/health/ready/")).status).toBe(200);
  expect((await api.request("GET", "/api/payouts/")).status).toBe(200);
  const found = await api.requestLines(3);
  expect(found.map((l) => [l.route, l.level])).toEqual([
    ["/health/live", "debug"],
    ["/health/ready", "debug"],
    ["/api/payouts/", "info"],
  ]);
});
