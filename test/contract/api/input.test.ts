// Input that cannot be mistaken: names of Object.prototype members are unknown fields, timestamps
// outside PostgreSQL's range are refused, a repeated JSON key is refused, JSON is UTF-8 only.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import {
  countRows,
  createPayout,
  expectProblem,
  expectValidationProblem,
  payoutRow,
  validBody,
} from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

let payoutsBefore = 0;
beforeEach(async () => {
  payoutsBefore = await countRows(database, "payouts");
});

const PROTOTYPE_NAMES = [
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "toString",
  "valueOf",
  "__defineGetter__",
  "__lookupGetter__",
];

describe("names of Object.prototype members", () => {
  for (const name of PROTOTYPE_NAMES) {
    test(`a body field named ${name} is an unknown field on create, and nothing is created`, async () => {
      const json = `{${JSON.stringify(name)}:"x",${JSON.stringify(validBody).slice(1)}`;
      expectValidationProblem(await api.request("POST", "/api/payouts/", json), [
        { field: name, message: "is not a known field" },
      ]);
      expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    });

    test(`a body field named ${name} is an unknown field on update, and nothing changes`, async () => {
      const { id } = await createPayout(api);
      const before = await payoutRow(database, id);
      const json = `{${JSON.stringify(name)}:"x","comment":"changed"}`;
      expectValidationProblem(await api.request("PATCH", `/api/payouts/${id}/`, json), [
        { field: name, message: "is not a known field" },
      ]);
      expect(await payoutRow(database, id)).toEqual(before);
    });

    test(`a query parameter named ${name} is an unknown parameter`, async () => {
      expectValidationProblem(
        await api.request("GET", `/api/payouts/?${encodeURIComponent(name)}=x`),
        [{ field: name, message: "is not a known query parameter" }],
        "query parameter",
      );
    });
  }
});

describe("timestamps outside years 0001 to 9999", () => {
  const message = "must be an RFC 3339 timestamp, like 2026-11-26T10:15:30Z";
  const refused = [
    "0000-01-01T00:00:00Z",
    "0000-12-31T23:59:59.999Z",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.9991Z",
    "9999-12-31T23:00:00-01:00",
  ];
  for (const filter of ["created_after", "created_before"]) {
    for (const at of refused) {
      test(`${filter}=${at} is a 400`, async () => {
        expectValidationProblem(
          await api.request("GET", `/api/payouts/?${filter}=${encodeURIComponent(at)}`),
          [{ field: filter, message }],
          "query parameter",
        );
      });
    }
    for (const at of ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "0004-02-29T00:00:00Z"]) {
      test(`${filter}=${at} is accepted`, async () => {
        expect((await api.request("GET", `/api/payouts/?${filter}=${encodeURIComponent(at)}`)).status).toBe(200);
      });
    }
  }

  test("29 February of a year that is not a leap year is refused, also in the first century", async () => {
    for (const at of ["0100-02-29T00:00:00Z", "0001-02-29T00:00:00Z"]) {
      expectValidationProblem(
        await api.request("GET", `/api/payouts/?created_after=${at}`),
        [{ field: "created_after", message }],
        "query parameter",
      );
    }
  });

  // A cursor as this service writes it (test/contract/api/list.test.ts follows real ones), with an
  // edited time.
  const cursorOf = (at: string, list: Record<string, string> = { limit: "50" }) =>
    Buffer.from(JSON.stringify({ at, id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10", list })).toString("base64url");
  const cursors: [string, string][] = [
    ["at 0000-06-01", cursorOf("0000-06-01T00:00:00.000Z")],
    ["past 9999", cursorOf("9999-12-31T23:59:59.9999Z")],
    ["whose list starts in year 0000", cursorOf("2026-01-01T00:00:00.000Z", { created_after: "0000-01-01T00:00:00Z" })],
  ];
  for (const [name, cursor] of cursors) {
    test(`a cursor ${name} is a 400`, async () => {
      expectValidationProblem(
        await api.request("GET", `/api/payouts/?cursor=${cursor}`),
        [{ field: "cursor", message: "is not a cursor this service issued" }],
        "query parameter",
      );
    });
  }

  test("the same cursor within the range is accepted", async () => {
    const response = await api.request("GET", `/api/payouts/?cursor=${cursorOf("9999-12-31T23:59:59.999Z")}`);
    expect(response.status).toBe(200);
  });
});

describe("repeated JSON keys", () => {
  test('{"amount":"1.00","amount":"9999.00"} is a 400 naming amount, and nothing is created', async () => {
    const json = `{"amount":"1.00","amount":"9999.00","currency":"RUB","recipient_details":"x"}`;
    expectProblem(await api.request("POST", "/api/payouts/", json), {
      status: 400,
      title: "Invalid JSON",
      code: "invalid_json",
      detail: 'the body is ambiguous: the key "amount" appears twice',
    });
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
  });

  test("a key written once plainly and once escaped is the same key", async () => {
    const json = `{"currency":"RUB","\\u0063urrency":"USD","amount":"1.00","recipient_details":"x"}`;
    const response = await api.request("POST", "/api/payouts/", json);
    expect(response.status).toBe(400);
    expect(response.body.detail).toBe('the body is ambiguous: the key "currency" appears twice');
  });

  test("a repeated key on update is a 400 and changes nothing", async () => {
    const { id } = await createPayout(api);
    const before = await payoutRow(database, id);
    const response = await api.request("PATCH", `/api/payouts/${id}/`, '{"comment":"a","comment":"b"}');
    expect(response.status).toBe(400);
    expect(response.body.detail).toBe('the body is ambiguous: the key "comment" appears twice');
    expect(await payoutRow(database, id)).toEqual(before);
  });

  test("a repeated key inside a nested value is found too", async () => {
    const json = `{"amount":"1.00","currency":"RUB","recipient_details":"x","comment":{"a":[{"k":1,"k":2}]}}`;
    const response = await api.request("POST", "/api/payouts/", json);
    expect(response.body.detail).toBe('the body is ambiguous: the key "k" appears twice');
  });

  test("a string ending in an escaped backslash does not hide the repeated key after it", async () => {
    const json = `{"recipient_details":"x\\\\","amount":"1.00","currency":"RUB","amount":"2.00"}`;
    const response = await api.request("POST", "/api/payouts/", json);
    expect(response.status).toBe(400);
    expect(response.body.detail).toBe('the body is ambiguous: the key "amount" appears twice');
  });

  test("equal keys in different objects, and strings that look like keys, are not repeats", async () => {
    const json = `{"amount":"1.00","currency":"RUB","recipient_details":"a \\"b\\": {\\"c\\",","comment":"amount"}`;
    const response = await api.request("POST", "/api/payouts/", json);
    expect(response.status).toBe(201);
    expect(response.body.recipient_details).toBe('a "b": {"c",');
  });
});

describe("charset", () => {
  for (const contentType of [
    "application/json; charset=iso-8859-1",
    "application/json; charset=utf-16",
    'application/json; charset="windows-1251"',
    "application/json;charset=",
  ]) {
    test(`${contentType} is a 415 and creates nothing`, async () => {
      expectProblem(
        await api.request("POST", "/api/payouts/", JSON.stringify(validBody), { "content-type": contentType }),
        {
          status: 415,
          title: "Unsupported media type",
          code: "unsupported_media_type",
          detail: "the body must be UTF-8 (charset=utf-8)",
        },
      );
      expect(await countRows(database, "payouts")).toBe(payoutsBefore);
    });
  }

  for (const contentType of ["application/json; charset=UTF-8", 'application/json; charset="utf-8"']) {
    test(`${contentType} is accepted`, async () => {
      const response = await api.request("POST", "/api/payouts/", JSON.stringify(validBody), {
        "content-type": contentType,
      });
      expect(response.status).toBe(201);
    });
  }
});
