// The OpenAPI document and the server agree. For each operation with a body or a query, over a
// thousand inputs are made from the served document (valid ones, and near-misses at and over each
// bound, each enum value and its neighbours, missing and extra fields, wrong types), judged by an
// independent validator (ajv, JSON Schema 2020-12, ajv-formats) against the document, and sent to
// the server, which must accept exactly what the document accepts. Inputs that touch a rule JSON
// Schema cannot state (the list in src/lib/kinds.ts) are sent too, and must not be a 5xx.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import fc from "fast-check";
import { fanOut } from "../../../src/webhooks/delivery/fanout";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { createPayout } from "../../kit/fixtures";

const database = testDatabase(10);
afterAll(() => database.close());
const api = testApi(database);

// biome-ignore lint/suspicious/noExplicitAny: the document is JSON read by the test
type Json = any;
let doc: Json;
const ajv = new Ajv2020({ strictSchema: false });
addFormats(ajv);

beforeAll(async () => {
  doc = (await api.request("GET", "/swagger/json")).body;
  // The document's components, so that its "#/components/schemas/..." references resolve.
  ajv.addSchema({ $id: "doc", components: doc.components });
});

const resolveParameter = (parameter: Json): Json =>
  parameter.$ref ? doc.components.parameters[parameter.$ref.split("/").at(-1)] : parameter;

const resolve = (schema: Json): Json =>
  schema?.$ref ? resolve(ajv.getSchema(`doc${schema.$ref}`)?.schema) : (schema ?? {});

/** A JSON text from entries, so that a key such as "__proto__" is written like any other. */
const jsonObject = (entries: [string, unknown][]) =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(",")}}`;

// --- values near each constraint the document states ------------------------------------------

const DECIMALS = [
  "0",
  "0.00",
  "0.001",
  "0.009",
  "0.01",
  "0.1",
  "1",
  "01",
  "000000000001.5",
  "10.5",
  "10.50",
  "10.505",
  "9999999999.99",
  "9999999999.999",
  "09999999999.99",
  "10000000000",
  "10000000000.00",
  "-1",
  "-0.01",
  "+1",
  "1e2",
  ".5",
  "5.",
  "1,5",
  "1 ",
  " 1",
  "abc",
  "NaN",
  "١٠",
];
const NUMBERS = [
  0, 0.01, 0.02, 0.1, 1, 10.5, 99.99, 9999999999.99, 9999999999, 10000000000, -1, -0.01, 0.001, 1e21, 0.07,
];
const WRONG_TYPES: unknown[] = [null, true, false, 0, 1, -1, [], ["x"], {}, { value: "10" }];

/** Candidate values for one property: built from what its schema says, plus generic wrong types. */
function candidates(schema: Json, neighbours: string[]): unknown[] {
  const out: unknown[] = [...WRONG_TYPES, "", " ", "x"];
  const branches: Json[] = schema.anyOf ?? [schema];
  for (const branch of branches) {
    if (branch.enum) {
      for (const value of branch.enum as string[]) {
        out.push(value, value.toLowerCase(), ` ${value}`, `${value} `, `${value}X`, value.slice(0, -1));
      }
      out.push(...neighbours);
    }
    if (branch.type === "string" && branch.pattern) out.push(...DECIMALS);
    if (branch.type === "string" && (branch.maxLength !== undefined || branch.minLength !== undefined)) {
      const min = branch.minLength ?? 0;
      const max = branch.maxLength as number;
      for (const n of [min - 1, min, max, max + 1].filter((n) => n >= 0)) {
        out.push("x".repeat(n), "💸".repeat(n), `${"y".repeat(Math.max(0, n - 1))}\u00e9`);
      }
      out.push("   ", "\t\n", "a b", "x\u0000y", "a\ud800b", `  ${"x".repeat(max)}  `, " padded ");
    }
    if (branch.type === "number") {
      out.push(...NUMBERS, branch.minimum, branch.maximum);
    }
  }
  return out;
}

/** Whether a body value touches one of the rules the document cannot state (src/lib/kinds.ts). */
function touchesBodyRule(field: string, value: unknown): boolean {
  // Amount: a JSON number is judged by its digits; with an exponent or more than two fraction
  // digits, the float JSON Schema sees is not what the server reads.
  if (field === "amount" && typeof value === "number") return !/^-?\d+(\.\d{1,2})?$/.test(JSON.stringify(value));
  if (typeof value !== "string") return false;
  // Text: NUL and lone surrogates; trimming (recipient_details is judged trimmed).
  if (value.includes("\u0000") || !value.isWellFormed()) return true;
  return field === "recipient_details" && value !== value.trim();
}

// --- bodies -----------------------------------------------------------------------------------

type Body = { text: string; touchesRule: boolean };

/**
 * At least `count` bodies for an object schema: the example with each property replaced by each
 * candidate, each property left out, each extra field added, whole bodies of the wrong type, and
 * random mixtures of all of these.
 */
function bodies(schema: Json, count: number): Body[] {
  const properties = Object.entries(schema.properties as Record<string, Json>).map(([name, s]) => [name, resolve(s)]);
  const enums = properties.flatMap(([, s]) => (s.enum as string[] | undefined) ?? []);
  const pools = new Map(properties.map(([name, s]) => [name as string, candidates(s, enums)]));
  const example = schema.examples[0] as Record<string, unknown>;
  const extras = [
    ...Object.keys(doc.components.schemas.Payout.properties).filter((f) => !(f in schema.properties)),
    "foo",
    "Amount",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
  ];
  const make = (entries: [string, unknown][]): Body => ({
    text: jsonObject(entries),
    touchesRule: entries.some(([field, value]) => touchesBodyRule(field, value)),
  });
  const out: Body[] = [];
  const base = Object.entries(example);
  for (const [name, pool] of pools) {
    for (const value of pool) out.push(make([...base.filter(([f]) => f !== name), [name, value]]));
    out.push(make(base.filter(([f]) => f !== name)));
  }
  for (const extra of extras) out.push(make([...base, [extra, "x"]]));
  out.push(make([]));
  for (const text of ["[]", '"x"', "1", "null", "true", JSON.stringify([example])])
    out.push({ text, touchesRule: false });

  // Random bodies mostly of valid values, so that both sides of the line are well exercised.
  const field = (name: string) => {
    const pool = pools.get(name) as unknown[];
    const valid = ajv.compile(resolve(schema.properties[name]));
    return fc
      .option(
        mostlyValid(
          pool.filter((v) => valid(v)),
          pool,
        ),
        { nil: undefined, freq: 6 },
      )
      .map((v) => [name, v]);
  };
  const arbitrary = fc.record({
    fields: fc.tuple(...properties.map(([name]) => field(name as string))),
    extra: fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom(...extras) },
    ),
  });
  const random = fc.sample(
    arbitrary.map(({ fields, extra }) => {
      const entries = fields.filter(([, v]) => v !== undefined) as [string, unknown][];
      return make(extra ? [...entries, [extra, 1]] : entries);
    }),
    { numRuns: Math.max(0, count - out.length), seed: 20261129 },
  );
  return [...out, ...random];
}

/** A value of the pool, valid ones `weight` times as often as any (ten by default). */
const mostlyValid = <T>(valid: T[], all: T[], weight = 10) =>
  valid.length === 0
    ? fc.constantFrom(...all)
    : fc.oneof({ weight, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: fc.constantFrom(...all) });

async function inChunks<T, R>(items: T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let at = 0; at < items.length; at += size)
    results.push(...(await Promise.all(items.slice(at, at + size).map(run))));
  return results;
}

type Verdict = { input: string; documentAccepts: boolean; status: number; touchesRule: boolean };

/** An input as a failure shows it: long texts cut short. */
const shown = (input: string) => (input.length > 160 ? `${input.slice(0, 160)}... (${input.length} chars)` : input);

/** Every input judged by the document and by the server: the disagreements, and the counts. */
function expectAgreement(verdicts: Verdict[], accepted: number[], minimum: number) {
  expect(verdicts.length).toBeGreaterThanOrEqual(minimum);
  const serverError = verdicts.filter((v) => v.status >= 500 || (v.status !== 400 && !accepted.includes(v.status)));
  expect(serverError).toEqual([]);
  const disagreements = verdicts.filter((v) => !v.touchesRule && v.documentAccepts !== accepted.includes(v.status));
  expect(disagreements).toEqual([]);
  // Both sides of the line are exercised, within the rules the document states.
  const plain = verdicts.filter((v) => !v.touchesRule);
  expect(plain.filter((v) => v.documentAccepts).length).toBeGreaterThan(minimum / 10);
  expect(plain.filter((v) => !v.documentAccepts).length).toBeGreaterThan(minimum / 10);
}

describe("bodies", () => {
  test("POST /api/payouts/: the server accepts exactly the bodies the document accepts", async () => {
    const operation = doc.paths["/api/payouts/"].post;
    const schema = resolve(operation.requestBody.content["application/json"].schema);
    const validate = ajv.compile({ $ref: `doc${operation.requestBody.content["application/json"].schema.$ref}` });
    const verdicts = await inChunks(bodies(schema, 1200), 8, async ({ text, touchesRule }) => {
      const response = await api.request("POST", "/api/payouts/", text);
      return {
        input: shown(text),
        documentAccepts: validate(JSON.parse(text)) as boolean,
        status: response.status,
        touchesRule,
      };
    });
    expectAgreement(verdicts, [201], 1000);
  }, 60_000);

  test("PATCH /api/payouts/{id}/: the server accepts exactly the bodies the document accepts", async () => {
    const operation = doc.paths["/api/payouts/{id}/"].patch;
    const ref = operation.requestBody.content["application/json"].schema.$ref;
    const validate = ajv.compile({ $ref: `doc${ref}` });
    const { id } = await createPayout(api);
    // A valid change may still meet the status rules (a cancel, then a change of terms): 409.
    const verdicts = await inChunks(bodies(resolve({ $ref: ref }), 1200), 8, async ({ text, touchesRule }) => {
      const response = await api.request("PATCH", `/api/payouts/${id}/`, text);
      return {
        input: shown(text),
        documentAccepts: validate(JSON.parse(text)) as boolean,
        status: response.status,
        touchesRule,
      };
    });
    expectAgreement(verdicts, [200, 409], 1000);
  }, 60_000);
});

// --- queries ----------------------------------------------------------------------------------

const TIMESTAMPS = [
  "2026-11-26T10:15:30Z",
  "2026-11-26T10:15:30.123456789Z",
  "2026-11-26t10:15:30z",
  "2026-11-26 10:15:30Z",
  "2026-11-26T13:15:30+03:00",
  "2026-11-26T10:15:30-23:59",
  "2026-11-26T10:15:30+24:00",
  "2026-11-26T10:15:30",
  "2026-11-26",
  "2026-02-29T00:00:00Z",
  "2024-02-29T00:00:00Z",
  "2100-02-29T00:00:00Z",
  "2000-02-29T00:00:00Z",
  "2026-04-31T00:00:00Z",
  "2026-13-01T00:00:00Z",
  "2026-11-26T24:00:00Z",
  "2026-11-26T10:60:00Z",
  "2026-11-26T10:15:61Z",
  "0001-01-01T00:00:00Z",
  "yesterday",
  "",
  "1795667464993",
];
// Timestamps that touch the Timestamp rule: year 0000 or past 9999 once the offset is applied,
// a leap second, and offsets that RFC 3339 writes with a colon but ajv-formats also takes without.
const RULE_TIMESTAMPS = [
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59-01:00",
  "2016-12-31T23:59:60Z",
  "2026-11-26T10:15:30+0300",
  "2026-11-26T10:15:30+03",
];
const INTEGERS = ["0", "1", "2", "05", "199", "200", "201", "-1", "1.5", "1.0", "1e2", "+5", " 5", "", "abc", "0x10"];

/** How the test reads a query value for its schema: decimal digits are an integer, anything else a string. */
const deserialize = (schema: Json, value: string) =>
  (schema.type === "integer" || schema.type === "number") && /^-?\d+$/.test(value) ? Number(value) : value;

const UUIDS = [
  "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10",
  "0193B6C2-5F1E-7C3A-9A51-2F0C8E6D4B10",
  "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b1",
  "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b100",
  "0193b6c25f1e7c3a9a512f0c8e6d4b10",
  "{0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10}",
  "not-a-uuid",
];
// ajv-formats takes a UUID as a URN too; RFC 4122's string form, which the server reads, has no prefix.
const RULE_UUIDS = ["urn:uuid:0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10"];

const queryOperations = () =>
  Object.entries(doc.paths as Record<string, Json>)
    .filter(([, item]) => item.get?.parameters?.some((p: Json) => resolveParameter(p).in === "query"))
    .map(([path]) => path);

test("every listing with a query parameter is checked below", () => {
  expect(queryOperations().sort()).toEqual(LISTINGS.sort());
});

const LISTINGS = [
  "/api/payouts/",
  "/api/events/",
  "/api/payouts/{id}/events/",
  "/api/webhook-endpoints/",
  "/api/webhook-endpoints/{endpoint_id}/deliveries/",
  "/api/keys/",
];

for (const path of LISTINGS) {
  test(`GET ${path}: the server accepts exactly the queries the document accepts`, async () => {
    const operation = doc.paths[path].get;
    const parameters = (operation.parameters as Json[]).map(resolveParameter).filter((p) => p.in === "query");
    const schemas = new Map(parameters.map((p) => [p.name as string, resolve(p.schema)]));
    // The parameter list is closed: the operation's description says unknown parameters are a 400.
    expect(operation.description).toContain("Unknown or repeated query parameters are a 400");
    const validate = ajv.compile({
      type: "object",
      properties: Object.fromEntries(schemas),
      required: parameters.filter((p) => p.required).map((p) => p.name),
      additionalProperties: false,
    });
    // Two endpoints, and each change a delivery to both: every listing has a second page.
    const endpoints = [];
    for (let i = 0; i < 2; i++) {
      endpoints.push((await api.request("POST", "/api/webhook-endpoints/", { url: "https://93.184.216.34/" })).body.id);
    }
    const { id } = await createPayout(api);
    await api.request("PATCH", `/api/payouts/${id}/`, { comment: "a second event" });
    // A key besides the test's own: the keys have a second page too.
    await api.request("POST", "/api/keys/", { name: "agreement", scopes: ["events:read"] });
    // The worker's fan-out, which makes the deliveries of the two events.
    while ((await fanOut(database.db)).events > 0);
    const url = path.replace("{id}", id).replace("{endpoint_id}", endpoints[0]);
    const { body: page } = await api.request("GET", `${url}?limit=1`);
    const cursors = [page.next_cursor, "abc", ""].filter((c) => typeof c === "string");

    const pools = new Map<string, string[]>();
    for (const [name, schema] of schemas) {
      if (schema.enum)
        pools.set(
          name,
          candidates(schema, []).filter((v): v is string => typeof v === "string"),
        );
      else if (schema.type === "integer") pools.set(name, INTEGERS);
      else if (schema.format === "date-time") pools.set(name, [...TIMESTAMPS, ...RULE_TIMESTAMPS]);
      else if (schema.format === "uuid") pools.set(name, [...UUIDS, ...RULE_UUIDS, id]);
      else pools.set(name, cursors);
    }
    const touchesRule = (entries: [string, string][]) =>
      entries.some(
        ([name, value]) => name === "cursor" || RULE_TIMESTAMPS.includes(value) || RULE_UUIDS.includes(value),
      );

    const queries: [string, string][][] = [[]];
    for (const [name, pool] of pools) for (const value of pool) queries.push([[name, value]]);
    for (const extra of ["sort", "offset", "LIMIT", "__proto__", "isPrototypeOf", "constructor"]) {
      queries.push(
        [[extra, "1"]],
        [
          ["limit", "5"],
          [extra, "x"],
        ],
      );
    }
    const arbitrary = fc.tuple(
      ...[...pools].map(([name, pool]) => {
        const valid = ajv.compile(schemas.get(name));
        const validValues = pool.filter((v) => valid(deserialize(schemas.get(name), v)) && !touchesRule([[name, v]]));
        // With few parameters, each must be invalid more often for invalid queries to be common.
        return fc
          .option(mostlyValid(validValues, pool, pools.size - 1), { nil: undefined, freq: 2 })
          .map((v) => [name, v] as const);
      }),
    );
    for (const picked of fc.sample(arbitrary, { numRuns: 1100 - queries.length, seed: 20261129 })) {
      queries.push(picked.filter(([, v]) => v !== undefined) as [string, string][]);
    }

    const verdicts = await inChunks(queries, 8, async (entries) => {
      const search = new URLSearchParams(entries).toString();
      const response = await api.request("GET", `${url}?${search}`);
      const object = Object.fromEntries(
        entries.map(([name, value]) => [name, deserialize(schemas.get(name) ?? {}, value)]),
      );
      return {
        input: shown(search),
        documentAccepts: validate(object) as boolean,
        status: response.status,
        touchesRule: touchesRule(entries),
      };
    });
    expectAgreement(verdicts, [200], 1000);
  }, 60_000);
}
