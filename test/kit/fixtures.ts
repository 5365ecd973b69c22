// Payouts in a given state, and the database reads that tests assert on. Statuses are reached by
// the only paths the status machine's trigger allows, written directly in SQL as the worker would.

import { expect } from "bun:test";
import { eq, type SQL, sql } from "drizzle-orm";
import type { PgInsertValue } from "drizzle-orm/pg-core";
import type { Database } from "../../src/db/client";
import { type PayoutRow, payoutOutbox, payouts, simulatedGatewayPayments } from "../../src/db/schema";
import type { Status } from "../../src/payouts/model";
import type { testApi } from "./api";
import { eventually } from "./wait";

type Api = ReturnType<typeof testApi>;

export const validBody = {
  amount: "1500.00",
  currency: "RUB",
  recipient_details: "40817810099910004312, BIC 044525225",
};

export const problemType = "application/problem+json";

type Response = { status: number; headers: Headers; body: unknown };
type Problem = { status: number; code: string; title: string; detail: string; [extra: string]: unknown };

/** The response is exactly this problem+json: status, content type and the whole body. */
export function expectProblem(response: Response, { status, title, code, detail, ...extra }: Problem): void {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe(problemType);
  expect(response.body).toEqual({ type: "about:blank", title, status, code, detail, ...extra });
}

/** The response is the 400 that names these invalid fields (or headers, or query parameters). */
export function expectValidationProblem(
  response: Response,
  errors: { field: string; message: string }[],
  what: "field" | "header" | "query parameter" = "field",
): void {
  expectProblem(response, {
    status: 400,
    title: "Validation failed",
    code: "validation_error",
    detail: errors.length === 1 ? `1 ${what} is invalid` : `${errors.length} ${what}s are invalid`,
    errors,
  });
}

/** Creates a payout through the api and returns its body. */
export async function createPayout(api: Api, overrides: Record<string, unknown> = {}) {
  const created = await api.request("POST", "/api/payouts/", { ...validBody, ...overrides });
  if (created.status !== 201) throw new Error(`create failed: ${created.status} ${created.text}`);
  return created.body as { id: string; status: Status; [field: string]: unknown };
}

// Entering PROCESSING is a worker's claim, which counts an attempt: the `payout.processing` event
// it records carries that attempt (1 at least, as the OpenAPI document says).
const CLAIM = "status = 'PROCESSING', attempts = attempts + 1, claimed_at = now()";

const PATHS: Record<Status, string[]> = {
  NEW: [],
  PROCESSING: [CLAIM],
  COMPLETED: [CLAIM, "status = 'COMPLETED', processed_at = now()"],
  FAILED: [CLAIM, "status = 'FAILED', failure_reason = 'gateway refused', processed_at = now()"],
  CANCELLED: ["status = 'CANCELLED'"],
};

/** Moves a NEW payout to `status` with the SQL updates the status machine allows. */
export async function moveTo(database: Database, id: string, status: Status): Promise<void> {
  for (const set of PATHS[status]) {
    await database.db.execute(sql`UPDATE payouts SET ${sql.raw(set)} WHERE id = ${id}`);
  }
}

/** Rows of a raw SQL statement on the api's own database handle. */
export async function query<T = Record<string, unknown>>(database: Database, statement: SQL): Promise<T[]> {
  return (await database.db.execute(statement)) as unknown as T[];
}

const iso = (column: string) => sql.raw(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

/** The payout's row as PostgreSQL holds it: amount as text, timestamps in the api's ISO format. */
export async function payoutRow(database: Database, id: string) {
  const rows = await query<Record<string, string | number | null>>(
    database,
    sql`SELECT id, amount::text AS amount, currency::text AS currency, recipient_details, comment, status::text AS status,
               failure_reason, attempts, ${iso("published_at")} AS published_at, ${iso("created_at")} AS created_at,
               ${iso("updated_at")} AS updated_at, ${iso("processed_at")} AS processed_at
        FROM payouts WHERE id = ${id}`,
  );
  return rows[0];
}

export async function countRows(database: Database, table: "payouts" | "idempotency_keys"): Promise<number> {
  const [row] = await query<{ n: number }>(database, sql`SELECT count(*)::int AS n FROM ${sql.identifier(table)}`);
  return row?.n ?? 0;
}

export async function payout(database: Database, id: string): Promise<PayoutRow> {
  const [row] = await database.db.select().from(payouts).where(eq(payouts.id, id));
  if (!row) throw new Error(`payout ${id} is not in the database`);
  return row;
}

/** What the simulated gateway did for a payout: `payments` is how many times money moved. */
export async function ledger(database: Database, id: string): Promise<{ payments: number; calls: number }> {
  const rows = await database.db
    .select({ calls: simulatedGatewayPayments.calls })
    .from(simulatedGatewayPayments)
    .where(eq(simulatedGatewayPayments.payoutId, id));
  return { payments: rows.length, calls: rows.reduce((sum, r) => sum + r.calls, 0) };
}

/** Whether the payout's id is still owed to the broker: its row in the outbox. */
export async function inOutbox(database: Database, id: string): Promise<boolean> {
  return (await database.db.$count(payoutOutbox, eq(payoutOutbox.payoutId, id))) > 0;
}

export async function countByStatus(database: Database): Promise<Record<string, number>> {
  const rows = await database.db
    .select({ status: payouts.status, count: sql<number>`count(*)::int` })
    .from(payouts)
    .groupBy(payouts.status);
  return Object.fromEntries(rows.map((r) => [r.status, r.count]));
}

/** Resolves with the payout once it is in `status`. */
export function reaches(database: Database, id: string, status: PayoutRow["status"], timeoutMs = 20_000) {
  return eventually(async () => {
    const row = await payout(database, id);
    return row.status === status && row;
  }, timeoutMs);
}

/** A payout written straight to the table, as a crash or an older version could leave it. */
export async function insertPayout(database: Database, values: Partial<PgInsertValue<typeof payouts>> = {}) {
  const [row] = await database.db
    .insert(payouts)
    .values({ id: Bun.randomUUIDv7(), amount: "10.00", currency: "EUR", recipientDetails: "DE89 3704", ...values })
    .returning();
  return row as PayoutRow;
}
