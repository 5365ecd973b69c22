// Every error path answers application/problem+json (RFC 9457) with the contract's status.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { connectPostgres } from "../../src/db/client";
import { createApp } from "../../src/http/app";
import { systemClock } from "../../src/lib/clock";
import type { Logger } from "../../src/lib/log";
import { apiPlugins } from "../../src/roles/http-features";
import { webhookSettings } from "../../src/webhooks/service";
import { countRows, createPayout, problemType, scratchDatabase, validBody } from "../fixtures";
import { testApi, testDatabase } from "../helpers";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);
const LIMIT = 64 * 1024;

let payoutsBefore = 0;
beforeEach(async () => {
  payoutsBefore = await countRows(database, "payouts");
});

const problem = (status: number, code: string, title: string, detail: string) => ({
  type: "about:blank",
  title,
  status,
  code,
  detail,
});

/** A valid create body padded with JSON whitespace to exactly `bytes` bytes. */
function bodyOfSize(bytes: number): string {
  const json = JSON.stringify(validBody);
  return `${json.slice(0, -1)}${" ".repeat(bytes - json.length)}}`;
}

/** Sends `text` as a stream in 1 KiB chunks: no Content-Length, as with chunked transfer encoding. */
function chunked(path: string, text: string): Request {
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 1024) controller.enqueue(bytes.slice(at, at + 1024));
      controller.close();
    },
  });
  const request = new Request(`http://payouts.test${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
  expect(request.headers.get("content-length")).toBeNull();
  return request;
}

async function expectProblem(response: Response, expected: object) {
  expect(response.headers.get("content-type")).toBe(problemType);
  expect(await response.json()).toEqual(expected);
}

describe("bodies", () => {
  for (const [name, text] of [
    ["a truncated object", '{"amount":"1.00",'],
    ["an empty body", ""],
    ["a single quote string", "{'amount':'1.00'}"],
    ["trailing garbage", `${JSON.stringify(validBody)}x`],
  ] as const) {
    test(`invalid JSON (${name}) is a 400 and creates nothing`, async () => {
      const response = await api.request("POST", "/api/payouts/", text);
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toBe(problemType);
      expect(response.body).toEqual({
        ...problem(400, "invalid_json", "Invalid JSON", ""),
        detail: expect.stringMatching(/^the body is not valid JSON: /),
      });
      expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    });
  }

  test("a body that is not UTF-8 is a 400", async () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
    const response = await api.app.handle(
      new Request("http://payouts.test/api/payouts/", {
        method: "POST",
        body: bytes,
        headers: { "content-type": "application/json" },
      }),
    );
    expect(response.status).toBe(400);
    await expectProblem(response, problem(400, "invalid_json", "Invalid JSON", "the body is not valid UTF-8"));
  });

  const unsupported = problem(
    415,
    "unsupported_media_type",
    "Unsupported media type",
    "the body must be application/json",
  );
  for (const contentType of [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
  ]) {
    test(`a POST body of type ${contentType} is a 415 and creates nothing`, async () => {
      const response = await api.request("POST", "/api/payouts/", JSON.stringify(validBody), {
        "content-type": contentType,
      });
      expect(response.status).toBe(415);
      expect(response.headers.get("content-type")).toBe(problemType);
      expect(response.body).toEqual(unsupported);
      expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    });
  }

  test("a POST without a content type is a 415", async () => {
    const response = await api.app.handle(
      new Request("http://payouts.test/api/payouts/", {
        method: "POST",
        body: new TextEncoder().encode(JSON.stringify(validBody)),
      }),
    );
    expect(response.status).toBe(415);
    await expectProblem(response, unsupported);
  });

  test("a PATCH body that is not JSON is a 415 and changes nothing", async () => {
    const { id, comment } = await createPayout(api);
    const response = await api.request("PATCH", `/api/payouts/${id}/`, '{"comment":"x"}', {
      "content-type": "text/plain",
    });
    expect(response.status).toBe(415);
    expect(response.body).toEqual(unsupported);
    expect((await api.request("GET", `/api/payouts/${id}/`)).body.comment).toBe(comment);
  });

  for (const contentType of ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]) {
    test(`content type ${contentType} is accepted`, async () => {
      const response = await api.request("POST", "/api/payouts/", JSON.stringify(validBody), {
        "content-type": contentType,
      });
      expect(response.status).toBe(201);
    });
  }

  test("a body of exactly 64 KiB is accepted", async () => {
    const response = await api.request("POST", "/api/payouts/", bodyOfSize(LIMIT));
    expect(response.status).toBe(201);
  });

  const tooLarge = problem(413, "payload_too_large", "Payload too large", `the body must be at most ${LIMIT} bytes`);

  test("a body of 64 KiB and one byte is a 413 and creates nothing", async () => {
    const response = await api.request("POST", "/api/payouts/", bodyOfSize(LIMIT + 1));
    expect(response.status).toBe(413);
    expect(response.headers.get("content-type")).toBe(problemType);
    expect(response.body).toEqual(tooLarge);
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
  });

  test("a chunked body of exactly 64 KiB is accepted", async () => {
    const response = await api.app.handle(chunked("/api/payouts/", bodyOfSize(LIMIT)));
    expect(response.status).toBe(201);
  });

  test("a chunked body over 64 KiB without Content-Length is a 413 and creates nothing", async () => {
    const response = await api.app.handle(chunked("/api/payouts/", bodyOfSize(10 * LIMIT)));
    expect(response.status).toBe(413);
    await expectProblem(response, tooLarge);
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
  });

  test("a Content-Length over 64 KiB is a 413 before the body is read", async () => {
    const response = await api.app.handle(
      new Request("http://payouts.test/api/payouts/", {
        method: "POST",
        body: JSON.stringify(validBody),
        headers: { "content-type": "application/json", "content-length": String(LIMIT + 1) },
      }),
    );
    expect(response.status).toBe(413);
    await expectProblem(response, tooLarge);
  });

  test("a PATCH body over 64 KiB is a 413", async () => {
    const { id } = await createPayout(api);
    const response = await api.request("PATCH", `/api/payouts/${id}/`, { comment: "x".repeat(LIMIT) });
    expect(response.status).toBe(413);
    expect(response.body).toEqual(tooLarge);
  });

  test("a DELETE needs no body and no content type", async () => {
    const { id } = await createPayout(api);
    const response = await api.app.handle(new Request(`http://payouts.test/api/payouts/${id}/`, { method: "DELETE" }));
    expect(response.status).toBe(204);
  });
});

describe("routes", () => {
  for (const path of ["/", "/api", "/api/payouts/x/y", "/payouts/", "/swagger/nope", "/health"]) {
    test(`unknown path ${path} is a 404`, async () => {
      const response = await api.request("GET", path);
      expect(response.status).toBe(404);
      expect(response.headers.get("content-type")).toBe(problemType);
      expect(response.body).toEqual(problem(404, "not_found", "Not found", `no route for ${path}`));
    });
  }

  const notAllowed: [string, string, string][] = [
    ["PUT", "/api/payouts/", "GET, POST"],
    ["DELETE", "/api/payouts", "GET, POST"],
    ["PATCH", "/api/payouts/", "GET, POST"],
    ["POST", "/api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/", "GET, PATCH, DELETE"],
    ["PUT", "/api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10", "GET, PATCH, DELETE"],
    ["POST", "/swagger/json", "GET"],
    ["DELETE", "/swagger", "GET"],
    ["POST", "/health/ready", "GET"],
    ["PUT", "/health/live/", "GET"],
  ];
  for (const [method, path, allow] of notAllowed) {
    test(`${method} ${path} is a 405 with Allow: ${allow}`, async () => {
      const response = await api.request(method, path, method === "DELETE" ? undefined : validBody);
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe(allow);
      expect(response.headers.get("content-type")).toBe(problemType);
      expect(response.body).toEqual(
        problem(405, "method_not_allowed", "Method not allowed", `${method} is not allowed here; use ${allow}`),
      );
      expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    });
  }
});

describe("the database", () => {
  const unreachable = () => connectPostgres("postgres://postgres@127.0.0.1:1/none", 1, "t");
  const unavailable = problem(
    503,
    "database_unavailable",
    "Service unavailable",
    "the database cannot be reached; try again",
  );

  const requests: [string, string, unknown][] = [
    ["POST", "/api/payouts/", validBody],
    ["GET", "/api/payouts/", undefined],
    ["GET", "/api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/", undefined],
    ["PATCH", "/api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/", { comment: "x" }],
    ["DELETE", "/api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/", undefined],
  ];
  for (const [method, path, body] of requests) {
    test(
      `${method} ${path} answers 503 at once when the database is unreachable`,
      async () => {
        const down = unreachable();
        try {
          const response = await testApi(down).request(method, path, body);
          expect(response.status).toBe(503);
          expect(response.headers.get("content-type")).toBe(problemType);
          expect(response.headers.get("retry-after")).toBe("1");
          expect(response.body).toEqual(unavailable);
        } finally {
          await down.close();
        }
      },
      { timeout: 10_000 },
    );
  }

  test("an unexpected error is a 500 with a generic body, logged once with its context", async () => {
    // A database without the payouts table: every query fails in a way no client could cause.
    const scratch = await scratchDatabase("payouts_no_tables");
    const broken = connectPostgres(scratch.url, 1, "t");
    const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
    const capture: Logger = {
      debug: () => {},
      info: () => {},
      warn: (msg, fields) => logged.push({ msg, fields }),
      error: (msg, fields) => logged.push({ msg, fields }),
      child: () => capture,
    };
    try {
      const app = createApp({
        database: broken,
        log: capture,
        brokerConnected: () => true,
        features: apiPlugins(
          { database: broken, clock: systemClock, log: capture, onCreated: () => {} },
          { idempotencyKeyTtlMs: loadConfig({}).idempotencyKeyTtlMs, webhooks: webhookSettings(loadConfig({})) },
        ),
      });
      const response = await app.handle(
        new Request("http://payouts.test/api/payouts/", {
          method: "POST",
          body: JSON.stringify(validBody),
          headers: { "content-type": "application/json" },
        }),
      );
      expect(response.status).toBe(500);
      expect(response.headers.get("content-type")).toBe(problemType);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual(
        problem(500, "internal_error", "Internal server error", "an unexpected error occurred"),
      );
      expect(text).not.toMatch(/payouts"|relation|insert|select|\bat\s|\.ts/i);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({
        msg: "unhandled error",
        fields: { method: "POST", path: "/api/payouts/", err: expect.any(Error) },
      });
    } finally {
      await broken.close();
      await scratch.drop();
    }
  });
});
