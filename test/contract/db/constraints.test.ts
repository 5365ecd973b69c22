// The payouts table's own guarantees: what no writer, api or worker, can store.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { databaseUrl } from "../../kit/db";

const db = postgres(databaseUrl, { max: 2, onnotice: () => {} });
afterAll(() => db.end());

type Row = {
  amount?: string;
  currency?: string;
  recipient_details?: string;
  comment?: string;
  status?: string;
  failure_reason?: string | null;
  processed_at?: string | null;
};

/** Inserts one payout; returns the error's SQLSTATE and constraint, or undefined on success. */
async function insert(row: Row) {
  const values = { id: Bun.randomUUIDv7(), amount: "10.00", currency: "RUB", recipient_details: "someone", ...row };
  try {
    await db`INSERT INTO payouts ${db(values)}`;
    return undefined;
  } catch (error) {
    const { code, constraint_name } = error as { code: string; constraint_name?: string };
    return { code, constraint: constraint_name };
  }
}

const check = (constraint: string) => ({ code: "23514", constraint });

test("an amount below 0.01 is refused", async () => {
  expect(await insert({ amount: "0.00" })).toEqual(check("payouts_amount_positive"));
  expect(await insert({ amount: "-5.00" })).toEqual(check("payouts_amount_positive"));
});

test("0.01 and 9999999999.99 are stored exactly", async () => {
  expect(await insert({ amount: "0.01" })).toBeUndefined();
  expect(await insert({ amount: "9999999999.99" })).toBeUndefined();
  const [row] = await db`SELECT amount::text AS amount FROM payouts WHERE amount = 9999999999.99 LIMIT 1`;
  expect(row?.amount).toBe("9999999999.99");
});

test("an amount over 9999999999.99 does not fit the column", async () => {
  expect(await insert({ amount: "10000000000.00" })).toEqual({ code: "22003", constraint: undefined });
});

test("a currency outside the enum is refused", async () => {
  expect(await insert({ currency: "usd" })).toEqual({ code: "22P02", constraint: undefined });
});

test("blank recipient_details is refused", async () => {
  expect(await insert({ recipient_details: "" })).toEqual(check("payouts_recipient_not_blank"));
  expect(await insert({ recipient_details: "   " })).toEqual(check("payouts_recipient_not_blank"));
});

test("recipient_details over 255 characters and comment over 1000 do not fit", async () => {
  expect(await insert({ recipient_details: "💸".repeat(255) })).toBeUndefined();
  expect(await insert({ recipient_details: "x".repeat(256) })).toEqual({ code: "22001", constraint: undefined });
  expect(await insert({ comment: "🎉".repeat(1000) })).toBeUndefined();
  expect(await insert({ comment: "x".repeat(1001) })).toEqual({ code: "22001", constraint: undefined });
});

test("processed_at is set exactly when the status is COMPLETED or FAILED", async () => {
  const now = new Date().toISOString();
  expect(await insert({ status: "COMPLETED", processed_at: null })).toEqual(check("payouts_processed_at_iff_final"));
  expect(await insert({ status: "NEW", processed_at: now })).toEqual(check("payouts_processed_at_iff_final"));
  expect(await insert({ status: "PROCESSING", processed_at: now })).toEqual(check("payouts_processed_at_iff_final"));
  expect(await insert({ status: "COMPLETED", processed_at: now })).toBeUndefined();
});

test("failure_reason is set exactly when the status is FAILED", async () => {
  const now = new Date().toISOString();
  expect(await insert({ status: "FAILED", processed_at: now, failure_reason: null })).toEqual(
    check("payouts_failure_reason_iff_failed"),
  );
  expect(await insert({ status: "COMPLETED", processed_at: now, failure_reason: "x" })).toEqual(
    check("payouts_failure_reason_iff_failed"),
  );
  expect(await insert({ status: "FAILED", processed_at: now, failure_reason: "gateway refused" })).toBeUndefined();
});

test("a new row is NEW with an empty comment, and timestamps in milliseconds", async () => {
  const id = Bun.randomUUIDv7();
  await db`INSERT INTO payouts (id, amount, currency, recipient_details) VALUES (${id}, 1, 'EUR', 'x')`;
  const [row] = await db`
    SELECT status::text AS status, comment, attempts, failure_reason, processed_at, published_at,
           created_at = updated_at AS same, extract(microseconds FROM created_at)::int % 1000 AS micros
    FROM payouts WHERE id = ${id}`;
  expect(row).toEqual({
    status: "NEW",
    comment: "",
    attempts: 0,
    failure_reason: null,
    processed_at: null,
    published_at: null,
    same: true,
    micros: 0,
  });
});
