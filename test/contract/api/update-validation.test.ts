// PATCH /api/payouts/{id}/: the field rules of the contract. A refused request changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { createPayout, expectValidationProblem, payoutRow } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

let id = "";
beforeAll(async () => {
  id = (await createPayout(api, { comment: "October bonus" })).id;
});

async function expectRefused(json: string, errors: { field: string; message: string }[]) {
  const before = await payoutRow(database, id);
  const response = await api.request("PATCH", `/api/payouts/${id}/`, json);
  expectValidationProblem(response, errors);
  expect(await payoutRow(database, id)).toEqual(before);
}

const FORMAT = "must be a decimal number with at most 2 fraction digits, like 1500.00";

describe("refused changes", () => {
  const cases: [string, string, { field: string; message: string }[]][] = [
    ["an empty object", "{}", [{ field: "", message: "at least one field must be given" }]],
    ["amount as text that is not a number", '{"amount":"abc"}', [{ field: "amount", message: FORMAT }]],
    ["amount with a comma", '{"amount":"1,5"}', [{ field: "amount", message: FORMAT }]],
    ["a negative amount", '{"amount":"-1"}', [{ field: "amount", message: "must be at least 0.01" }]],
    ["amount with three fraction digits", '{"amount":0.001}', [{ field: "amount", message: FORMAT }]],
    [
      "amount over the maximum",
      '{"amount":10000000000.00}',
      [{ field: "amount", message: "must be at most 9999999999.99" }],
    ],
    ["amount true", '{"amount":true}', [{ field: "amount", message: "must be a decimal string or number" }]],
    ["amount null", '{"amount":null}', [{ field: "amount", message: "must be a decimal string or number" }]],
    [
      "amount with digits past a float's precision",
      '{"amount":1.0000000000000000001}',
      [{ field: "amount", message: FORMAT }],
    ],
    ["lower-case currency", '{"currency":"rub"}', [{ field: "currency", message: "must be one of RUB, USD, EUR" }]],
    [
      "blank recipient_details",
      '{"recipient_details":"   "}',
      [{ field: "recipient_details", message: "must not be blank" }],
    ],
    [
      "recipient_details over 255 characters",
      JSON.stringify({ recipient_details: "x".repeat(256) }),
      [{ field: "recipient_details", message: "must be at most 255 characters" }],
    ],
    [
      "comment over 1000 characters",
      JSON.stringify({ comment: "🎉".repeat(1001) }),
      [{ field: "comment", message: "must be at most 1000 characters" }],
    ],
    ["comment with NUL", '{"comment":"\\u0000"}', [{ field: "comment", message: "must not contain NUL characters" }]],
    [
      "comment with a lone surrogate",
      '{"comment":"\\ud83d"}',
      [{ field: "comment", message: "must be valid Unicode (no lone surrogates)" }],
    ],
    [
      "status PROCESSING",
      '{"status":"PROCESSING"}',
      [{ field: "status", message: "can only be set to CANCELLED; processing sets the other statuses" }],
    ],
    [
      "status COMPLETED",
      '{"status":"COMPLETED"}',
      [{ field: "status", message: "can only be set to CANCELLED; processing sets the other statuses" }],
    ],
    [
      "status NEW",
      '{"status":"NEW"}',
      [{ field: "status", message: "can only be set to CANCELLED; processing sets the other statuses" }],
    ],
    ["status in lower case", '{"status":"cancelled"}', [{ field: "status", message: "must be CANCELLED" }]],
    ["read-only id", '{"id":"0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10"}', [{ field: "id", message: "is read-only" }]],
    ["read-only failure_reason", '{"failure_reason":"x"}', [{ field: "failure_reason", message: "is read-only" }]],
    [
      "read-only created_at",
      '{"created_at":"2026-01-01T00:00:00Z"}',
      [{ field: "created_at", message: "is read-only" }],
    ],
    ["read-only processed_at", '{"processed_at":null}', [{ field: "processed_at", message: "is read-only" }]],
    ["an unknown field", '{"note":"x"}', [{ field: "note", message: "is not a known field" }]],
    [
      "several invalid fields together",
      '{"amount":"0","currency":"GBP","comment":"ok","bogus":1}',
      [
        { field: "amount", message: "must be at least 0.01" },
        { field: "currency", message: "must be one of RUB, USD, EUR" },
        { field: "bogus", message: "is not a known field" },
      ],
    ],
    ["an array body", "[]", [{ field: "", message: "the body must be a JSON object" }]],
    ["a number body", "7", [{ field: "", message: "the body must be a JSON object" }]],
    ["a string body", '"CANCELLED"', [{ field: "", message: "the body must be a JSON object" }]],
    ["a null body", "null", [{ field: "", message: "the body must be a JSON object" }]],
  ];
  for (const [name, json, errors] of cases) {
    test(`PATCH with ${name} is refused with 400 and changes nothing`, () => expectRefused(json, errors));
  }
});

describe("accepted changes", () => {
  test("PATCH of amount as a JSON number stores it with two fraction digits", async () => {
    const response = await api.request("PATCH", `/api/payouts/${id}`, '{"amount":9999999999.99}');
    expect(response.status).toBe(200);
    expect(response.body.amount).toBe("9999999999.99");
    expect((await payoutRow(database, id))?.amount).toBe("9999999999.99");
  });

  test("PATCH of recipient_details trims it", async () => {
    const response = await api.request("PATCH", `/api/payouts/${id}`, { recipient_details: "  new account  " });
    expect(response.status).toBe(200);
    expect(response.body.recipient_details).toBe("new account");
    expect((await payoutRow(database, id))?.recipient_details).toBe("new account");
  });

  test("PATCH changes only the fields given and moves updated_at", async () => {
    await database.db.execute(sql`UPDATE payouts SET updated_at = now() - interval '1 hour' WHERE id = ${id}`);
    const before = await payoutRow(database, id);
    const response = await api.request("PATCH", `/api/payouts/${id}/`, { currency: "EUR", comment: "🎉".repeat(1000) });
    expect(response.status).toBe(200);
    const after = await payoutRow(database, id);
    expect(after).toEqual({ ...before, currency: "EUR", comment: "🎉".repeat(1000), updated_at: expect.any(String) });
    expect(String(after?.updated_at) > String(before?.updated_at)).toBe(true);
    expect(response.body).toEqual({
      id,
      amount: after?.amount,
      currency: "EUR",
      recipient_details: after?.recipient_details,
      comment: "🎉".repeat(1000),
      status: "NEW",
      failure_reason: null,
      created_at: after?.created_at,
      updated_at: after?.updated_at,
      processed_at: null,
    });
  });
});
