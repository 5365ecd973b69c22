// The OpenAPI document and Swagger UI, served by the service itself (no internet needed).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { PROBLEM_CODES, PROBLEMS, type ProblemCode } from "../../../src/http/problem";
import { scopeFor } from "../../../src/keys/auth";
import { SCOPES } from "../../../src/keys/model";
import { CURRENCIES, STATUSES } from "../../../src/payouts/model";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON read by the tests
type Json = any;
let doc: Json;
beforeAll(async () => {
  doc = (await api.request("GET", "/swagger/json")).body;
});

/** Resolves a local `$ref` in the document. */
const deref = (node: Json): Json => {
  if (!node?.$ref) return node;
  return (node.$ref as string)
    .replace(/^#\//, "")
    .split("/")
    .reduce((at: Json, key: string) => at?.[key], doc);
};

/** The values an enum-like schema allows, written as `enum` or as `anyOf` of constants. */
const allowedValues = (schema: Json): string[] =>
  deref(schema).enum ?? deref(schema).anyOf?.map((s: Json) => s.const ?? s.enum?.[0]) ?? [];

const operation = (path: string, method: string) => doc.paths?.[path]?.[method];

/** Every problem+json example of every operation, with where it is documented. */
const problemExamples = (document: Json): { at: string; value: Json }[] =>
  Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item as Record<string, Json>).flatMap(([method, op]) =>
      Object.entries(op.responses as Record<string, Json>).flatMap(([status, response]) =>
        Object.entries(response.content?.["application/problem+json"]?.examples ?? {}).map(([name, example]) => ({
          at: `${method.toUpperCase()} ${path} ${status} ${name}`,
          value: (example as Json).value,
        })),
      ),
    ),
  );

/** The examples whose status or title is not the catalogue's for their code. */
const offCatalogue = (examples: { at: string; value: Json }[]): string[] =>
  examples
    .filter(({ value }) => {
      const entry = PROBLEMS[value.code as ProblemCode];
      return entry?.status !== value.status || entry.title !== value.title;
    })
    .map(({ at, value }) => `${at}: ${value.code} titled ${value.title}`);

describe("the document", () => {
  test("/swagger/json and /swagger/?format=openapi serve the same OpenAPI 3 document", async () => {
    const other = await api.request("GET", "/swagger/?format=openapi");
    expect(other.status).toBe(200);
    expect(other.headers.get("content-type")).toMatch(/^application\/json/);
    expect(other.body).toEqual(doc);
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
  });

  test("it describes every route and method of the contract, and nothing else", () => {
    const described = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops as Record<string, Json>)
        .filter(([, op]) => !op.responses["405"])
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(described.sort()).toEqual(
      [
        "POST /api/payouts/",
        "GET /api/payouts/",
        "GET /api/payouts/{id}/",
        "PATCH /api/payouts/{id}/",
        "DELETE /api/payouts/{id}/",
        "GET /api/payouts/{id}/events/",
        "GET /api/events/",
        "POST /api/webhook-endpoints/",
        "GET /api/webhook-endpoints/",
        "GET /api/webhook-endpoints/{endpoint_id}/",
        "PATCH /api/webhook-endpoints/{endpoint_id}/",
        "DELETE /api/webhook-endpoints/{endpoint_id}/",
        "POST /api/webhook-endpoints/{endpoint_id}/rotate-secret/",
        "GET /api/webhook-endpoints/{endpoint_id}/deliveries/",
        "POST /api/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry/",
        "POST /api/keys/",
        "GET /api/keys/",
        "GET /api/keys/{id}/",
        "POST /api/keys/{id}/roll",
        "DELETE /api/keys/{id}/",
        "GET /health/live",
        "GET /health/ready",
      ].sort(),
    );
  });

  const expectedResponses: [string, string, string[]][] = [
    ["/api/payouts/", "post", ["201", "400", "401", "403", "413", "415", "422", "500", "503", "504"]],
    ["/api/payouts/", "get", ["200", "400", "401", "403", "500", "503"]],
    ["/api/payouts/{id}/", "get", ["200", "401", "403", "404", "500", "503"]],
    ["/api/payouts/{id}/", "patch", ["200", "400", "401", "403", "404", "409", "413", "415", "500", "503"]],
    ["/api/payouts/{id}/", "delete", ["204", "401", "403", "404", "409", "500", "503"]],
    ["/api/payouts/{id}/events/", "get", ["200", "400", "401", "403", "404", "500", "503"]],
    ["/api/events/", "get", ["200", "400", "401", "403", "500", "503"]],
    ["/api/webhook-endpoints/", "post", ["201", "400", "401", "403", "413", "415", "500", "503"]],
    ["/api/webhook-endpoints/", "get", ["200", "400", "401", "403", "500", "503"]],
    ["/api/webhook-endpoints/{endpoint_id}/", "get", ["200", "401", "403", "404", "500", "503"]],
    ["/api/webhook-endpoints/{endpoint_id}/", "patch", ["200", "400", "401", "403", "404", "413", "415", "500", "503"]],
    ["/api/webhook-endpoints/{endpoint_id}/", "delete", ["204", "401", "403", "404", "500", "503"]],
    ["/api/webhook-endpoints/{endpoint_id}/rotate-secret/", "post", ["200", "401", "403", "404", "500", "503"]],
    ["/api/webhook-endpoints/{endpoint_id}/deliveries/", "get", ["200", "400", "401", "403", "404", "500", "503"]],
    [
      "/api/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry/",
      "post",
      ["202", "401", "403", "404", "500", "503"],
    ],
    ["/api/keys/", "post", ["201", "400", "401", "403", "413", "415", "500", "503"]],
    ["/api/keys/", "get", ["200", "400", "401", "403", "500", "503"]],
    ["/api/keys/{id}/", "get", ["200", "401", "403", "404", "500", "503"]],
    ["/api/keys/{id}/roll", "post", ["200", "400", "401", "403", "404", "409", "413", "415", "500", "503"]],
    ["/api/keys/{id}/", "delete", ["204", "401", "403", "404", "409", "500", "503"]],
  ];

  test("the request sent to webhook endpoints is an OpenAPI 3.1 webhooks entry with its signed headers", () => {
    const request = doc.webhooks?.["payout-event"]?.post;
    expect(request.parameters.map((p: Json) => [p.in, p.name, p.required])).toEqual([
      ["header", "webhook-id", true],
      ["header", "webhook-timestamp", true],
      ["header", "webhook-signature", true],
    ]);
    expect(deref(request.requestBody.content["application/json"].schema)).toBe(doc.components.schemas.PayoutEvent);
  });
  for (const [path, method, statuses] of expectedResponses) {
    test(`${method.toUpperCase()} ${path} lists its responses, errors as problem+json`, () => {
      const responses = operation(path, method).responses;
      expect(Object.keys(responses).sort()).toEqual(statuses);
      for (const status of statuses.filter((s) => Number(s) >= 400)) {
        const schema = responses[status].content?.["application/problem+json"]?.schema;
        expect(deref(schema)).toBe(doc.components.schemas.Problem);
        expect(responses[status].description).toEqual(expect.any(String));
      }
    });
  }

  test("the Payout schema describes every field, with the status and currency enums", () => {
    const payout = doc.components.schemas.Payout;
    expect(Object.keys(payout.properties).sort()).toEqual(
      [
        "id",
        "amount",
        "currency",
        "recipient_details",
        "comment",
        "status",
        "failure_reason",
        "created_at",
        "updated_at",
        "processed_at",
      ].sort(),
    );
    expect(allowedValues(payout.properties.status)).toEqual([...STATUSES]);
    expect(allowedValues(payout.properties.currency)).toEqual([...CURRENCIES]);
    expect(payout.properties.amount.type).toBe("string");
  });

  test("the Problem schema describes the problem+json fields, current_status as an enum", () => {
    const problem = doc.components.schemas.Problem;
    expect(Object.keys(problem.properties).sort()).toEqual(
      ["type", "title", "status", "code", "detail", "current_status", "payout_id", "scope", "errors"].sort(),
    );
    expect(problem.required.sort()).toEqual(["code", "detail", "status", "title", "type"]);
    expect(allowedValues(problem.properties.current_status)).toEqual([...STATUSES]);
    expect(Object.keys(problem.properties.errors.items.properties).sort()).toEqual(["field", "message"]);
  });

  test("create takes the CreatePayout body: required fields, no others, and the Idempotency-Key header", () => {
    const create = operation("/api/payouts/", "post");
    const body = deref(create.requestBody.content["application/json"].schema);
    expect(body.required.sort()).toEqual(["amount", "currency", "recipient_details"]);
    expect(Object.keys(body.properties).sort()).toEqual(["amount", "comment", "currency", "recipient_details"]);
    expect(body.additionalProperties).toBe(false);
    expect(allowedValues(body.properties.currency)).toEqual([...CURRENCIES]);
    expect(body.properties.recipient_details).toMatchObject({ minLength: 1, maxLength: 255 });
    expect(body.properties.comment).toMatchObject({ maxLength: 1000 });
    const key = create.parameters.find((p: Json) => p.name === "Idempotency-Key");
    expect(key).toMatchObject({ in: "header", required: false, schema: { minLength: 1, maxLength: 255 } });
  });

  test("create's 201 documents the Location and Idempotent-Replayed headers", () => {
    const created = operation("/api/payouts/", "post").responses["201"];
    expect(Object.keys(created.headers).sort()).toEqual(["Idempotent-Replayed", "Location", "X-Request-Id"]);
    expect(created.headers.Location.required).toBe(true);
    expect(deref(created.content["application/json"].schema)).toBe(doc.components.schemas.Payout);
  });

  test("update takes any subset of the editable fields, status only as CANCELLED", () => {
    const body = deref(operation("/api/payouts/{id}/", "patch").requestBody.content["application/json"].schema);
    expect(body.required ?? []).toEqual([]);
    expect(Object.keys(body.properties).sort()).toEqual([
      "amount",
      "comment",
      "currency",
      "recipient_details",
      "status",
    ]);
    expect(body.additionalProperties).toBe(false);
    expect(body.properties.status).toMatchObject({ type: "string", enum: ["CANCELLED"] });
  });

  test("list documents its query parameters and the page", () => {
    const list = operation("/api/payouts/", "get");
    const params = Object.fromEntries(
      list.parameters
        .map(deref)
        .filter((p: Json) => p.in === "query")
        .map((p: Json) => [p.name, p]),
    );
    expect(Object.keys(params).sort()).toEqual(
      ["created_after", "created_before", "currency", "cursor", "limit", "status"].sort(),
    );
    for (const p of Object.values(params) as Json[]) expect(p.in).toBe("query");
    expect(params.limit.schema).toMatchObject({ minimum: 1, maximum: 200, default: 50 });
    expect(allowedValues(params.status.schema)).toEqual([...STATUSES]);
    expect(allowedValues(params.currency.schema)).toEqual([...CURRENCIES]);
    const page = deref(list.responses["200"].content["application/json"].schema);
    expect(Object.keys(page.properties).sort()).toEqual(["next_cursor", "results"]);
    expect(deref(page.properties.results.items)).toBe(doc.components.schemas.Payout);
  });

  test("the routes on one payout take its id as a path parameter", () => {
    for (const method of ["get", "patch", "delete"]) {
      const id = operation("/api/payouts/{id}/", method).parameters.find((p: Json) => p.name === "id");
      expect(id).toMatchObject({ in: "path", required: true });
    }
  });
});

describe("access control in the document", () => {
  test("a bearer scheme; every /api operation needs it and names its scope as the guard does; no other does", () => {
    expect(doc.components.securitySchemes).toEqual({
      bearer: { type: "http", scheme: "bearer", description: expect.any(String) },
    });
    expect(doc.security).toBeUndefined();
    let guarded = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item as Record<string, Json>)) {
        if (!path.startsWith("/api/")) {
          expect({ path, method, security: op.security, scopes: op["x-scopes"] }).toEqual({
            path,
            method,
            security: [],
          } as Json);
          continue;
        }
        guarded++;
        const scope = scopeFor(
          method.toUpperCase(),
          path.replace(/\{[^}]+\}/g, "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10"),
        );
        expect({ path, method, security: op.security, scopes: op["x-scopes"] }).toEqual({
          path,
          method,
          security: [{ bearer: [] }],
          scopes: [scope],
        });
        expect(op.description).toContain(`Needs the scope ${scope}.`);
        expect(op.responses["401"].headers["WWW-Authenticate"].required).toBe(true);
        const missing = op.responses["403"].content["application/problem+json"].examples.missing_scope.value;
        expect(missing).toMatchObject({ status: 403, code: "missing_scope", scope });
      }
    }
    // 20 operations and the 405s of their paths.
    expect(guarded).toBeGreaterThan(20);
  });

  test("Problem declares the scope member that missing_scope carries, as one of the scopes", () => {
    expect(allowedValues(doc.components.schemas.Problem.properties.scope)).toEqual([...SCOPES]);
  });
});

describe("a complete and truthful document", () => {
  const METHODS = ["get", "put", "post", "patch", "delete", "options", "trace"];
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item as Record<string, Json>).map(([method, op]) => ({ path, method, op })),
    );
  const ajv = new Ajv2020({ strictSchema: false });
  addFormats(ajv);
  const validator = (schema: Json) => {
    if (!ajv.getSchema("doc")) ajv.addSchema({ $id: "doc", components: doc.components });
    return ajv.compile(schema.$ref ? { $ref: `doc${schema.$ref}` } : schema);
  };
  const id = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";

  test("every path takes every method: an operation, or a 405 with the server's own Allow and body", async () => {
    for (const path of Object.keys(doc.paths)) {
      for (const method of METHODS) {
        const op = doc.paths[path][method];
        expect(op).toBeDefined();
        if (!op.responses["405"]) continue;
        // The guard answers before the router: a 405 under /api is a 401 or 403 first.
        expect(Object.keys(op.responses)).toEqual(path.startsWith("/api/") ? ["401", "403", "405"] : ["405"]);
        const response = await api.request(method.toUpperCase(), path.replace("{id}", id));
        const documented = op.responses["405"];
        expect(response.status).toBe(405);
        expect(documented.headers.Allow.required).toBe(true);
        expect(response.headers.get("allow")).toBe(documented.headers.Allow.schema.enum[0]);
        expect(response.body).toEqual(documented.content["application/problem+json"].examples.method_not_allowed.value);
      }
    }
  });

  test("every operation but the 405 ones has a success response, and each 405 one only its 405 (and the guard's)", () => {
    for (const { op } of operations()) {
      const statuses = Object.keys(op.responses).filter((s) => s !== "401" && s !== "403");
      if (statuses.includes("405")) expect(statuses).toEqual(["405"]);
      else expect(statuses.some((s) => s.startsWith("2"))).toBe(true);
    }
  });

  test("every response of every operation declares X-Request-Id, required", () => {
    expect(doc.components.headers["X-Request-Id"].required).toBe(true);
    for (const { op } of operations()) {
      for (const response of Object.values(op.responses) as Json[]) {
        expect(response.headers["X-Request-Id"]).toEqual({ $ref: "#/components/headers/X-Request-Id" });
      }
    }
  });

  test("every error response has examples of its own: its status, valid problems", () => {
    const isProblem = validator({ $ref: "#/components/schemas/Problem" });
    let count = 0;
    for (const { op } of operations()) {
      for (const [status, response] of Object.entries(op.responses) as [string, Json][]) {
        const content = response.content?.["application/problem+json"];
        if (!content) continue;
        const examples = Object.values(content.examples) as Json[];
        expect(examples.length).toBeGreaterThan(0);
        for (const { value } of examples) {
          expect(value.status).toBe(Number(status));
          expect(isProblem(value)).toBe(true);
          count++;
        }
      }
    }
    expect(count).toBeGreaterThan(40);
  });

  test("headers the server must send are required: Location on 201, Retry-After on 503 and 504", () => {
    for (const { op } of operations()) {
      const responses = op.responses as Record<string, Json>;
      if (responses["201"]) expect(responses["201"].headers.Location.required).toBe(true);
      // A keyless create's 504 names its payout in Location; a keyed create's names none (its key decides).
      if (responses["504"]) expect(responses["504"].headers.Location.required).toBeUndefined();
      for (const status of ["503", "504"]) {
        if (responses[status]?.content?.["application/problem+json"]) {
          expect(
            deref(responses[status].headers["Retry-After"]) ?? doc.components.headers["Retry-After"],
          ).toMatchObject({
            required: true,
          });
        }
      }
    }
  });

  test("no enumeration is written as anyOf of constants (Swagger UI shows enum as a list)", () => {
    const anyOfConst: string[] = [];
    const walk = (node: Json, at: string) => {
      if (node && typeof node === "object") {
        if (node.anyOf?.some((branch: Json) => "const" in branch)) anyOfConst.push(at);
        for (const [key, child] of Object.entries(node)) walk(child, `${at}/${key}`);
      }
    };
    walk(doc, "#");
    expect(anyOfConst).toEqual([]);
  });

  test("the problem code is an enum of the codes the server uses", () => {
    expect(doc.components.schemas.Problem.properties.code.enum).toEqual([...PROBLEM_CODES]);
  });

  test("every documented problem example has the status and title the catalogue gives its code", () => {
    const examples = problemExamples(doc);
    expect(examples.length).toBeGreaterThan(40);
    expect(offCatalogue(examples)).toEqual([]);
  });

  test("a title written beside the catalogue is caught: the check fails when an example diverges", () => {
    const copy = JSON.parse(JSON.stringify(doc));
    const conflict = copy.paths["/api/payouts/{id}/"].delete.responses["409"].content["application/problem+json"];
    conflict.examples.status_conflict.value.title = "Status forbids it";
    expect(offCatalogue(problemExamples(copy))).toEqual([
      "DELETE /api/payouts/{id}/ 409 status_conflict: status_conflict titled Status forbids it",
    ]);
  });

  test("the examples come from the catalogue: a title changed there is the title the document shows", async () => {
    // A fresh process: the catalogue is changed before any module that builds the document loads.
    const script = `
      const { PROBLEMS } = await import(${JSON.stringify(`${import.meta.dir}/../../../src/http/problem.ts`)});
      PROBLEMS.status_conflict.title = "Changed in the catalogue";
      const { connectPostgres } = await import(${JSON.stringify(`${import.meta.dir}/../../../src/db/client.ts`)});
      const { testApi } = await import(${JSON.stringify(`${import.meta.dir}/../../kit/api.ts`)});
      const database = connectPostgres(process.env.DATABASE_URL, 1, "payouts-test-catalogue");
      const { body } = await testApi(database).request("GET", "/swagger/json");
      await database.close();
      const responses = body.paths["/api/payouts/{id}/"].patch.responses;
      console.log(JSON.stringify(responses["409"].content["application/problem+json"].examples.status_conflict.value));
    `;
    const run = Bun.spawn([process.execPath, "--eval", script], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([
      new Response(run.stdout).text(),
      new Response(run.stderr).text(),
      run.exited,
    ]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(out)).toMatchObject({ status: 409, code: "status_conflict", title: "Changed in the catalogue" });
  });

  test("the health endpoints answer as the document says", async () => {
    for (const path of ["/health/live", "/health/ready"]) {
      const response = await api.request("GET", path);
      const schema = doc.paths[path].get.responses[String(response.status)].content["application/json"].schema;
      expect(validator(schema)(response.body)).toBe(true);
    }
  });
});

describe("Swagger UI", () => {
  test("/swagger serves HTML that refers only to assets of this service", async () => {
    const page = await api.request("GET", "/swagger");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.text).not.toMatch(/(https?:)?\/\/[a-z0-9]/i);
    const assets = [...page.text.matchAll(/(?:src|href|url)\s*[=:]\s*"([^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.sort()).toEqual([
      "/swagger/assets/swagger-ui-bundle.js",
      "/swagger/assets/swagger-ui.css",
      "/swagger/json",
    ]);
  });

  // Over a real socket, as a browser fetches them.
  for (const [asset, type] of [
    ["/swagger/assets/swagger-ui.css", /^text\/css/],
    ["/swagger/assets/swagger-ui-bundle.js", /^(text|application)\/javascript/],
  ] as const) {
    test(`${asset} is served by the service`, async () => {
      const server = testApi(database).app.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const response = await fetch(`http://127.0.0.1:${server.server?.port}${asset}`);
        expect(response.status).toBe(200);
        expect(response.headers.get("content-type")).toMatch(type);
        expect((await response.text()).length).toBeGreaterThan(1000);
      } finally {
        await server.stop();
      }
    });
  }
});
