// The database enforces the status machine itself (drizzle/0001_status_machine.sql), whoever
// writes: it must agree with TRANSITIONS, TERMS_EDITABLE_IN and DELETABLE_IN in
// src/payouts/status.ts for every pair of statuses.
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { STATUSES, type Status } from "../../../src/payouts/model";
import { DELETABLE_IN, TERMS_EDITABLE_IN, TRANSITIONS } from "../../../src/payouts/status";
import { databaseUrl } from "../../kit/db";

const db = postgres(databaseUrl, { max: 4, onnotice: () => {} });
afterAll(() => db.end());

// The columns each status needs to pass the CHECK constraints, so that only the trigger decides.
const COLUMNS: Record<Status, string> = {
  NEW: "processed_at = NULL, failure_reason = NULL",
  PROCESSING: "processed_at = NULL, failure_reason = NULL",
  COMPLETED: "processed_at = now(), failure_reason = NULL",
  FAILED: "processed_at = now(), failure_reason = 'gateway refused'",
  CANCELLED: "processed_at = NULL, failure_reason = NULL",
};
const PATH: Record<Status, Status[]> = {
  NEW: [],
  PROCESSING: ["PROCESSING"],
  COMPLETED: ["PROCESSING", "COMPLETED"],
  FAILED: ["PROCESSING", "FAILED"],
  CANCELLED: ["CANCELLED"],
};

async function payoutIn(status: Status): Promise<string> {
  const id = Bun.randomUUIDv7();
  await db`INSERT INTO payouts (id, amount, currency, recipient_details) VALUES (${id}, '10.00', 'RUB', 'someone')`;
  for (const step of PATH[status]) {
    await db.unsafe(`UPDATE payouts SET status = '${step}', ${COLUMNS[step]} WHERE id = $1`, [id]);
  }
  return id;
}

/** The error a statement fails with, or undefined when it succeeds. */
async function failure(statement: Promise<unknown>): Promise<{ code: string; message: string } | undefined> {
  try {
    await statement;
    return undefined;
  } catch (error) {
    const { code, message } = error as { code: string; message: string };
    return { code, message };
  }
}

const statusOf = async (id: string) =>
  (await db`SELECT status::text AS status FROM payouts WHERE id = ${id}`)[0]?.status;

describe("status transitions", () => {
  for (const from of STATUSES) {
    for (const to of STATUSES.filter((s) => s !== from)) {
      const allowed = TRANSITIONS[from].includes(to);
      test(`${from} -> ${to} is ${allowed ? "allowed" : "refused"} by the database, as TRANSITIONS says`, async () => {
        const id = await payoutIn(from);
        const error = await failure(
          db.unsafe(`UPDATE payouts SET status = '${to}', ${COLUMNS[to]} WHERE id = $1`, [id]),
        );
        if (allowed) {
          expect(error).toBeUndefined();
          expect(await statusOf(id)).toBe(to);
        } else {
          expect(error).toEqual({ code: "23514", message: `payout ${id}: status ${from} cannot become ${to}` });
          expect(await statusOf(id)).toBe(from);
        }
      });
    }
  }

  for (const status of STATUSES) {
    test(`a ${status} payout can be written without changing its status`, async () => {
      const id = await payoutIn(status);
      expect(
        await failure(db`UPDATE payouts SET comment = 'later', updated_at = now() WHERE id = ${id}`),
      ).toBeUndefined();
      expect(await statusOf(id)).toBe(status);
    });
  }
});

describe("terms", () => {
  const terms = [
    ["amount", "amount = 11.00"],
    ["currency", "currency = 'USD'"],
    ["recipient_details", "recipient_details = 'someone else'"],
  ];
  for (const status of STATUSES) {
    const editable = TERMS_EDITABLE_IN.includes(status);
    for (const [field, set] of terms) {
      test(`${field} of a ${status} payout is ${editable ? "editable" : "frozen"} in the database`, async () => {
        const id = await payoutIn(status);
        const error = await failure(db.unsafe(`UPDATE payouts SET ${set} WHERE id = $1`, [id]));
        if (editable) expect(error).toBeUndefined();
        else {
          expect(error).toEqual({
            code: "23514",
            message: `payout ${id}: amount, currency and recipient_details are frozen in status ${status}`,
          });
        }
      });
    }
  }

  test("writing the same terms again outside NEW is not a change", async () => {
    const id = await payoutIn("COMPLETED");
    expect(
      await failure(
        db`UPDATE payouts SET amount = 10.00, currency = 'RUB', recipient_details = 'someone' WHERE id = ${id}`,
      ),
    ).toBeUndefined();
  });
});

describe("deletion", () => {
  for (const status of STATUSES) {
    const deletable = DELETABLE_IN.includes(status);
    test(`a ${status} payout ${deletable ? "can be deleted" : "is kept"} by the database`, async () => {
      const id = await payoutIn(status);
      const error = await failure(db`DELETE FROM payouts WHERE id = ${id}`);
      const left = await db`SELECT 1 FROM payouts WHERE id = ${id}`;
      if (deletable) {
        expect(error).toBeUndefined();
        expect(left).toHaveLength(0);
      } else {
        expect(error).toEqual({ code: "23514", message: `payout ${id}: a ${status} payout is kept` });
        expect(left).toHaveLength(1);
      }
    });
  }
});
