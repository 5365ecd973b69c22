// The payout rules as plain functions, without the app or a database: the body of a create, and a
// list's query and cursor. test/contract/api/ holds the same rules as the api answers them.
import { describe, expect, test } from "bun:test";
import { decodeCursor, encodeCursor } from "../../../src/lib/lists";
import { nextCursor, validateCreate, validateListQuery } from "../../../src/payouts/validation";

describe("create", () => {
  test("a valid body is accepted, the comment defaulting to empty", () => {
    expect(validateCreate({ amount: "1500.00", currency: "RUB", recipient_details: "x" })).toEqual({
      ok: true,
      value: { amount: "1500.00", currency: "RUB", recipient_details: "x", comment: "" },
    });
  });

  test("every invalid field is named, with why", () => {
    expect(validateCreate({ amount: "0", currency: "XXX" })).toEqual({
      ok: false,
      errors: [
        { field: "amount", message: "must be at least 0.01" },
        { field: "currency", message: "must be one of RUB, USD, EUR" },
        { field: "recipient_details", message: "is required" },
      ],
    });
  });
});

describe("cursors", () => {
  const position = { createdAt: new Date("2026-11-26T10:00:00.000Z"), id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10" };

  test("a cursor carries its list: the next page asked for with the cursor alone is the same list", () => {
    const first = validateListQuery(new URLSearchParams("limit=20&status=COMPLETED&currency=RUB"));
    if (!first.ok) throw new Error("the first page's query is valid");
    const next = validateListQuery(new URLSearchParams({ cursor: nextCursor(position, first.value) }));
    expect(next).toEqual({ ok: true, value: { ...first.value, cursor: position } });
  });

  test("what encodeCursor writes decodes to the same position; anything else is refused", () => {
    const cursor = encodeCursor(position, { status: "NEW" });
    expect(decodeCursor(cursor)).toEqual({ position, list: { status: "NEW" } });
    expect(decodeCursor(`${cursor}x`)).toBeUndefined();
    expect(decodeCursor("not base64url JSON")).toBeUndefined();
    expect(decodeCursor(encodeCursor({ ...position, id: "42" }, {}))).toBeUndefined();
    expect(decodeCursor(encodeCursor(position, { cursor: "nested" }))).toBeUndefined();
    expect(validateListQuery(new URLSearchParams({ cursor: `${cursor}x` }))).toEqual({
      ok: false,
      errors: [{ field: "cursor", message: "is not a cursor this service issued" }],
    });
  });
});
