// POST /api/payouts/: every field rule of the contract. A refused request creates nothing.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { countRows, expectValidationProblem, payoutRow, validBody } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

let payoutsBefore = 0;
beforeEach(async () => {
  payoutsBefore = await countRows(database, "payouts");
  api.handedOff.length = 0;
});

/** Posts a raw JSON text (so that numbers keep the digits written) and expects one refused field. */
async function expectRefused(json: string, errors: { field: string; message: string }[]) {
  const response = await api.request("POST", "/api/payouts/", json);
  expectValidationProblem(response, errors);
  expect(await countRows(database, "payouts")).toBe(payoutsBefore);
  expect(api.handedOff).toEqual([]);
}

/** The body with `field` replaced by the raw JSON text `value`. */
const withRaw = (field: string, value: string) => {
  const rest = Object.entries(validBody)
    .filter(([name]) => name !== field)
    .map(([name, v]) => `${JSON.stringify(name)}:${JSON.stringify(v)}`);
  return `{${[...rest, `${JSON.stringify(field)}:${value}`].join(",")}}`;
};

async function expectCreated(json: string) {
  const response = await api.request("POST", "/api/payouts/", json);
  expect(response.status).toBe(201);
  expect(await countRows(database, "payouts")).toBe(payoutsBefore + 1);
  return response.body;
}

const FORMAT = "must be a decimal number with at most 2 fraction digits, like 1500.00";
const TYPE = "must be a decimal string or number";

describe("amount", () => {
  const refused: [string, string][] = [
    ['"abc"', FORMAT],
    ['"1,5"', FORMAT],
    ['"-1"', "must be at least 0.01"],
    ["-1", "must be at least 0.01"],
    ['"0.001"', FORMAT],
    ["0.001", FORMAT],
    ['"NaN"', FORMAT],
    ['"Infinity"', FORMAT],
    ["true", TYPE],
    ["null", TYPE],
    ['""', FORMAT],
    ['["10"]', TYPE],
    ['{"value":"10"}', TYPE],
    ['"0"', "must be at least 0.01"],
    ['"0.00"', "must be at least 0.01"],
    ["0", "must be at least 0.01"],
    ['"10000000000.00"', "must be at most 9999999999.99"],
    ["10000000000.00", "must be at most 9999999999.99"],
    ["1.0000000000000000001", FORMAT],
    ["9999999999.991", FORMAT],
    ['" 10"', FORMAT],
    ['"10 "', FORMAT],
    ['"+10"', FORMAT],
    ['"1e2"', FORMAT],
    ['"10."', FORMAT],
    ['".5"', FORMAT],
    ['"１０"', FORMAT],
  ];
  for (const [raw, message] of refused) {
    test(`amount ${raw} is refused with 400`, () =>
      expectRefused(withRaw("amount", raw), [{ field: "amount", message }]));
  }

  test("a bare NaN is not JSON: 400 invalid_json, nothing created", async () => {
    const response = await api.request("POST", "/api/payouts/", withRaw("amount", "NaN"));
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ type: "about:blank", status: 400, code: "invalid_json" });
    expect(await countRows(database, "payouts")).toBe(payoutsBefore);
  });

  const accepted: [string, string][] = [
    ['"0.01"', "0.01"],
    ["0.01", "0.01"],
    ['"9999999999.99"', "9999999999.99"],
    ["9999999999.99", "9999999999.99"],
    ['"10.5"', "10.50"],
    ["10.5", "10.50"],
    ['"10"', "10.00"],
    ["10", "10.00"],
    ["10.50", "10.50"],
  ];
  for (const [raw, stored] of accepted) {
    test(`amount ${raw} is accepted and comes back as "${stored}", stored exactly`, async () => {
      const body = await expectCreated(withRaw("amount", raw));
      expect(body.amount).toBe(stored);
      expect((await payoutRow(database, body.id))?.amount).toBe(stored);
    });
  }
});

describe("currency", () => {
  for (const raw of ['"usd"', '"Usd"', '"USD "', '"GBP"', '""', "1", "null"]) {
    test(`currency ${raw} is refused with 400`, () =>
      expectRefused(withRaw("currency", raw), [{ field: "currency", message: "must be one of RUB, USD, EUR" }]));
  }
  for (const currency of ["RUB", "USD", "EUR"]) {
    test(`currency ${currency} is accepted`, async () => {
      const body = await expectCreated(withRaw("currency", JSON.stringify(currency)));
      expect(body.currency).toBe(currency);
    });
  }
});

describe("recipient_details", () => {
  test("recipient_details is trimmed before it is stored", async () => {
    const body = await expectCreated(withRaw("recipient_details", '"  \\t IBAN DE00 \\n "'));
    expect(body.recipient_details).toBe("IBAN DE00");
    expect((await payoutRow(database, body.id))?.recipient_details).toBe("IBAN DE00");
  });

  test("empty recipient_details is refused", () =>
    expectRefused(withRaw("recipient_details", '""'), [{ field: "recipient_details", message: "must not be blank" }]));

  test("blank recipient_details is refused", () =>
    expectRefused(withRaw("recipient_details", '"  \\t\\n "'), [
      { field: "recipient_details", message: "must not be blank" },
    ]));

  test("recipient_details of 255 code points (emoji, surrounded by spaces) is accepted", async () => {
    const value = "💸".repeat(255);
    const body = await expectCreated(withRaw("recipient_details", JSON.stringify(`  ${value}  `)));
    expect(body.recipient_details).toBe(value);
  });

  test("recipient_details of 256 code points is refused", () =>
    expectRefused(withRaw("recipient_details", JSON.stringify("x".repeat(256))), [
      { field: "recipient_details", message: "must be at most 255 characters" },
    ]));

  test("recipient_details of 256 emoji is refused", () =>
    expectRefused(withRaw("recipient_details", JSON.stringify("💸".repeat(256))), [
      { field: "recipient_details", message: "must be at most 255 characters" },
    ]));

  test("recipient_details that is not a string is refused", () =>
    expectRefused(withRaw("recipient_details", "42"), [{ field: "recipient_details", message: "must be a string" }]));

  test("recipient_details with a NUL character is refused", () =>
    expectRefused(withRaw("recipient_details", '"a\\u0000b"'), [
      { field: "recipient_details", message: "must not contain NUL characters" },
    ]));

  test("recipient_details with a lone surrogate is refused", () =>
    expectRefused(withRaw("recipient_details", '"a\\ud800b"'), [
      { field: "recipient_details", message: "must be valid Unicode (no lone surrogates)" },
    ]));
});

describe("comment", () => {
  test("comment defaults to the empty string", async () => {
    const body = await expectCreated(JSON.stringify(validBody));
    expect(body.comment).toBe("");
  });

  test("comment is kept exactly as sent, spaces included", async () => {
    const body = await expectCreated(JSON.stringify({ ...validBody, comment: "  October bonus  " }));
    expect(body.comment).toBe("  October bonus  ");
  });

  test("comment of 1000 emoji is accepted and stored as 1000 characters", async () => {
    const comment = "🎉".repeat(1000);
    const body = await expectCreated(JSON.stringify({ ...validBody, comment }));
    expect(body.comment).toBe(comment);
    expect((await payoutRow(database, body.id))?.comment).toBe(comment);
  });

  test("comment of 1001 characters is refused", () =>
    expectRefused(JSON.stringify({ ...validBody, comment: "x".repeat(1001) }), [
      { field: "comment", message: "must be at most 1000 characters" },
    ]));

  test("comment of 1001 emoji is refused", () =>
    expectRefused(JSON.stringify({ ...validBody, comment: "🎉".repeat(1001) }), [
      { field: "comment", message: "must be at most 1000 characters" },
    ]));

  test("comment with a NUL character is refused", () =>
    expectRefused(withRaw("comment", '"\\u0000"'), [{ field: "comment", message: "must not contain NUL characters" }]));

  test("comment with a lone surrogate is refused", () =>
    expectRefused(withRaw("comment", '"\\udc00"'), [
      { field: "comment", message: "must be valid Unicode (no lone surrogates)" },
    ]));

  test("comment null is refused", () =>
    expectRefused(withRaw("comment", "null"), [{ field: "comment", message: "must be a string" }]));
});

describe("unknown and read-only fields", () => {
  for (const field of ["id", "status", "failure_reason", "created_at", "updated_at", "processed_at"]) {
    test(`read-only field ${field} is refused on create`, () =>
      expectRefused(withRaw(field, '"NEW"'), [{ field, message: "is read-only" }]));
  }

  test("an unknown field is refused, not dropped", () =>
    expectRefused(withRaw("amount_cents", "150000"), [{ field: "amount_cents", message: "is not a known field" }]));

  test("every missing required field is reported", () =>
    expectRefused("{}", [
      { field: "amount", message: "is required" },
      { field: "currency", message: "is required" },
      { field: "recipient_details", message: "is required" },
    ]));

  test("every invalid field is reported together", () =>
    expectRefused('{"amount":"abc","currency":"usd","recipient_details":" ","id":"x","foo":1}', [
      { field: "amount", message: FORMAT },
      { field: "currency", message: "must be one of RUB, USD, EUR" },
      { field: "recipient_details", message: "must not be blank" },
      { field: "id", message: "is read-only" },
      { field: "foo", message: "is not a known field" },
    ]));
});

describe("the body", () => {
  for (const raw of ["[]", '["x"]', '"payout"', "42", "null", "true"]) {
    test(`a body that is not an object (${raw}) is refused`, () =>
      expectRefused(raw, [{ field: "", message: "the body must be a JSON object" }]));
  }

  test("a valid body creates a NEW payout with every field of the resource", async () => {
    const body = await expectCreated(JSON.stringify({ ...validBody, comment: "October bonus" }));
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      amount: "1500.00",
      currency: "RUB",
      recipient_details: validBody.recipient_details,
      comment: "October bonus",
      status: "NEW",
      failure_reason: null,
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      updated_at: body.created_at,
      processed_at: null,
    });
  });
});
