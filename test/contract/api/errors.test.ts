// Every error path answers application/problem+json (RFC 9457) with the contract's status.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { connectPostgres } from "../../../src/db/client";
import { migratePostgres } from "../../../src/db/migrate";
import { RETRY_WITH_KEY } from "../../../src/http/problem";
import type { Logger } from "../../../src/lib/log";
import { testApi } from "../../kit/api";
import { scratchDatabase, testDatabase } from "../../kit/db";
import { countRows, createPayout, problemType, validBody } from "../../kit/fixtures";

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
    const response = await api.handle(
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
    const response = await api.handle(
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
    const response = await api.handle(chunked("/api/payouts/", bodyOfSize(LIMIT)));
    expect(response.status).toBe(201);
  });

  test("a chunked body over 64 KiB without Content-Length is a 413 and creates nothing", async () => {
    const response = await api.handle(chunked("/api/payouts/", bodyOfSize(10 * LIMIT)));
    expect(response.status).toBe(413);
    await expectProblem(response, tooLarge);
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
  });

  test("a Content-Length over 64 KiB is a 413 before the body is read", async () => {
    const response = await api.handle(
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
    const response = await api.handle(new Request(`http://payouts.test/api/payouts/${id}/`, { method: "DELETE" }));
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
          // The key is read from the run's database: the payouts' own database is the one down.
          const response = await testApi(down, { keyDatabase: database }).request(method, path, body);
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
    // A database whose payouts table refuses every insert: a failure no client could cause.
    const scratch = await scratchDatabase("payouts_broken_insert");
    await migratePostgres(scratch.url);
    const broken = connectPostgres(scratch.url, 1, "t");
    await broken.db.execute(sql`
      CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'broken'; END $$;
      CREATE TRIGGER refuse BEFORE INSERT ON payouts FOR EACH ROW EXECUTE FUNCTION refuse()`);
    const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
    const capture: Logger = {
      debug: () => {},
      info: () => {},
      warn: (msg, fields) => logged.push({ msg, fields }),
      error: (msg, fields) => logged.push({ msg, fields }),
      child: () => capture,
    };
    try {
      const app = testApi(broken, { log: capture });
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
      expect(text).not.toMatch(/payouts"|relation|insert|select|broken|\bat\s|\.ts/i);
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

// Before the migrations have run (a rollout's new pods, a database restored from an old backup)
// the database answers but lacks what the code uses: 503, as /health/ready says, never a 500.
describe("before the schema is current", () => {
  const schemaBehind = problem(
    503,
    "database_unavailable",
    "Service unavailable",
    "the database's schema is not current yet (a migration has not run); try again",
  );
  const creates = async (url: string) => {
    const behind = connectPostgres(url, 1, "t");
    try {
      const api = testApi(behind, { keyDatabase: database });
      return {
        keyless: await api.request("POST", "/api/payouts/", validBody),
        keyed: await api.request("POST", "/api/payouts/", validBody, { "idempotency-key": "schema-behind" }),
        list: await api.request("GET", "/api/payouts/"),
      };
    } finally {
      await behind.close();
    }
  };
  const expectRefused = (answers: Awaited<ReturnType<typeof creates>>) => {
    for (const response of [answers.keyless, answers.keyed]) {
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
    }
    expect(answers.keyless.body).toEqual(schemaBehind);
    expect(answers.keyed.body).toMatchObject({ status: 503, code: "database_unavailable" });
    expect(answers.keyed.body.detail).toEndWith(RETRY_WITH_KEY);
  };

  test("a POST to an empty database (no tables: 42P01) is a 503", async () => {
    const scratch = await scratchDatabase("payouts_no_tables");
    try {
      const answers = await creates(scratch.url);
      expectRefused(answers);
      expect(answers.list.status).toBe(503);
      expect(answers.list.body).toEqual(schemaBehind);
    } finally {
      await scratch.drop();
    }
  });

  test("a POST to a database without this build's newest function (42883) is a 503 and stores nothing", async () => {
    const scratch = await scratchDatabase("payouts_no_fence");
    try {
      await migratePostgres(scratch.url);
      const admin = connectPostgres(scratch.url, 1, "t");
      try {
        await admin.db.execute(sql`DROP FUNCTION create_deadline_fence(timestamptz)`);
        expectRefused(await creates(scratch.url));
        expect(await countRows(admin, "payouts")).toBe(0);
      } finally {
        await admin.close();
      }
    } finally {
      await scratch.drop();
    }
  });
});
