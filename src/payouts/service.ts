import { createHash } from "node:crypto";
import { and, desc, eq, getTableColumns, gte, inArray, lt, type SQL, sql } from "drizzle-orm";
import { batched } from "../db/batch";
import type { Db } from "../db/client";
import { idempotencyKeys, type PayoutRow, payouts } from "../db/schema";
import { IdempotencyKeyReused, NotFound, StatusConflict } from "../errors";
import { type CreatePayoutInput, Payout, STATUSES, type UpdatePayoutInput } from "./model";
import { DELETABLE_IN, TERMS_EDITABLE_IN, TRANSITIONS } from "./status";
import { encodeCursor, type ListQuery } from "./validation";

export function toPayout(row: PayoutRow): Payout {
  return {
    id: row.id,
    amount: row.amount,
    currency: row.currency,
    recipient_details: row.recipientDetails,
    comment: row.comment,
    status: row.status,
    failure_reason: row.failureReason,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    processed_at: row.processedAt?.toISOString() ?? null,
  };
}

export type CreateResult = { payout: Payout; replayed: false } | { status: number; body: unknown; replayed: true };

/** Thrown inside the create transaction to undo the insert when the key is already taken. */
class KeyTaken extends Error {}

const fingerprint = (input: CreatePayoutInput) =>
  createHash("sha256")
    .update(JSON.stringify([input.amount, input.currency, input.recipient_details, input.comment]))
    .digest("hex");

/** jsonb keeps keys in an order of its own: a replay puts them back, byte for byte the first response. */
const inPayoutOrder = (stored: unknown) => {
  const body = stored as Record<string, unknown>;
  return Object.fromEntries(Object.keys(Payout.properties).map((field) => [field, body[field]]));
};

const CANCELLABLE_FROM = STATUSES.filter((s) => TRANSITIONS[s].includes("CANCELLED"));

/**
 * Each column of a new payout, for the batch INSERT ... SELECT: drizzle names every column of the
 * table, in its order, so the select list is built in that order; the type makes a new column
 * fail to compile until it has its value here.
 */
const NEW_ROW: Record<keyof PayoutRow, SQL> = {
  id: sql`t.id`,
  amount: sql`t.amount`,
  currency: sql`t.currency`,
  recipientDetails: sql`t.recipient_details`,
  comment: sql`t.comment`,
  status: sql`'NEW'`,
  failureReason: sql`NULL`,
  attempts: sql`0`,
  claimedAt: sql`NULL`,
  publishedAt: sql`NULL`,
  createdAt: sql`now()`,
  updatedAt: sql`now()`,
  processedAt: sql`NULL`,
};

/**
 * One page of the list, one more row than asked for (it tells whether there is a next page). The
 * order and the cursor's row comparison match the (created_at, id) indexes, alone or after status
 * or currency: PostgreSQL reads the page from an index, backwards, and sorts nothing.
 */
export function pageQuery(db: Db, query: ListQuery) {
  const { cursor } = query;
  return db
    .select()
    .from(payouts)
    .where(
      and(
        query.status && eq(payouts.status, query.status),
        query.currency && eq(payouts.currency, query.currency),
        query.createdAfter && gte(payouts.createdAt, query.createdAfter),
        query.createdBefore && lt(payouts.createdAt, query.createdBefore),
        cursor &&
          sql`(${payouts.createdAt}, ${payouts.id}) < (${cursor.createdAt.toISOString()}::timestamptz, ${cursor.id}::uuid)`,
      ),
    )
    .orderBy(desc(payouts.createdAt), desc(payouts.id))
    .limit(query.limit + 1);
}

/** Payout requests as clients see them: plain functions over the database, no HTTP in sight. */
export function payoutService(db: Db) {
  const newRow = (input: CreatePayoutInput) => ({
    id: Bun.randomUUIDv7(),
    amount: input.amount,
    currency: input.currency,
    recipientDetails: input.recipient_details,
    comment: input.comment,
  });

  const insertPayout = async (tx: Db, input: CreatePayoutInput) => {
    const [row] = await tx.insert(payouts).values(newRow(input)).returning();
    if (!row) throw new Error("INSERT returned no row");
    return toPayout(row);
  };

  // Creates without a key that arrive together are one multi-row INSERT: one round trip and one
  // commit for all of them, each request still answered only after that commit.
  // Prepared once: the batch travels as one JSON parameter, so no SQL is built per request.
  const insertMany = db
    .insert(payouts)
    .select(
      sql`SELECT ${sql.join(
        Object.keys(getTableColumns(payouts)).map((column) => NEW_ROW[column as keyof PayoutRow]),
        sql`, `,
      )}
          FROM jsonb_to_recordset(${sql.placeholder("rows")}::jsonb)
            AS t(id uuid, amount numeric(12, 2), currency currency, recipient_details varchar(255), comment varchar(1000))`,
    )
    .returning()
    .prepare("insert_payouts");

  const insertBatch = batched(
    async (inputs: CreatePayoutInput[]) => {
      const values = inputs.map(newRow);
      const rows = await insertMany.execute({
        rows: JSON.stringify(
          values.map((v) => ({
            id: v.id,
            amount: v.amount,
            currency: v.currency,
            recipient_details: v.recipientDetails,
            comment: v.comment,
          })),
        ),
      });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return values.map((value) => {
        const row = byId.get(value.id);
        if (!row) throw new Error("INSERT returned no row");
        return toPayout(row);
      });
    },
    { maxSize: 200, maxInFlight: 4 },
  );

  /**
   * With an idempotency key, the key's row and the payout commit together or not at all. A
   * concurrent request with the same key blocks on the key's unique index until the first one
   * commits, then finds the key taken and replays the stored response: one payout, whatever the
   * number of requests.
   */
  const createIdempotent = async (input: CreatePayoutInput, key: string): Promise<CreateResult> => {
    const print = fingerprint(input);
    try {
      const payout = await db.transaction(async (tx) => {
        const created = await insertPayout(tx, input);
        const [taken] = await tx
          .insert(idempotencyKeys)
          .values({ key, fingerprint: print, payoutId: created.id, responseStatus: 201, responseBody: created })
          .onConflictDoNothing()
          .returning({ key: idempotencyKeys.key });
        if (!taken) throw new KeyTaken();
        return created;
      });
      return { payout, replayed: false };
    } catch (error) {
      if (!(error instanceof KeyTaken)) throw error;
    }
    const [first] = await db.select().from(idempotencyKeys).where(eq(idempotencyKeys.key, key));
    if (!first) throw new Error("idempotency key vanished after a conflict");
    if (first.fingerprint !== print) {
      throw new IdempotencyKeyReused();
    }
    return { status: first.responseStatus, body: inPayoutOrder(first.responseBody), replayed: true };
  };

  return {
    async create(input: CreatePayoutInput, idempotencyKey?: string): Promise<CreateResult> {
      if (idempotencyKey !== undefined) return createIdempotent(input, idempotencyKey);
      return { payout: await insertBatch(input), replayed: false };
    },

    async get(id: string): Promise<Payout> {
      const [row] = await db.select().from(payouts).where(eq(payouts.id, id));
      if (!row) throw new NotFound();
      return toPayout(row);
    },

    /** Keyset pagination, newest first: each page is one index range scan, however deep. */
    async list(query: ListQuery): Promise<{ results: Payout[]; next_cursor: string | null }> {
      const rows = await pageQuery(db, query);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return {
        results: page.map(toPayout),
        next_cursor: rows.length > query.limit && last ? encodeCursor(last, query) : null,
      };
    },

    /**
     * One conditional UPDATE: when the change touches the terms or the status, it applies only
     * while the payout is still in a status that allows it. A worker's claim racing a cancel is
     * serialised by the row lock: exactly one of them matches.
     */
    async update(id: string, input: UpdatePayoutInput): Promise<Payout> {
      const changesTerms =
        input.amount !== undefined || input.currency !== undefined || input.recipient_details !== undefined;
      const allowedFrom = STATUSES.filter(
        (s) =>
          (!changesTerms || TERMS_EDITABLE_IN.includes(s)) &&
          (input.status === undefined || CANCELLABLE_FROM.includes(s)),
      );
      const [row] = await db
        .update(payouts)
        .set({
          amount: input.amount,
          currency: input.currency,
          recipientDetails: input.recipient_details,
          comment: input.comment,
          status: input.status,
          updatedAt: sql`now()`,
        })
        .where(and(eq(payouts.id, id), inArray(payouts.status, allowedFrom)))
        .returning();
      if (row) return toPayout(row);
      const current = await this.get(id);
      throw new StatusConflict(
        current.status,
        input.status
          ? "only a NEW payout can be cancelled"
          : "amount, currency and recipient_details change only while it is NEW",
      );
    },

    async remove(id: string): Promise<void> {
      const [row] = await db
        .delete(payouts)
        .where(and(eq(payouts.id, id), inArray(payouts.status, DELETABLE_IN)))
        .returning({ id: payouts.id });
      if (row) return;
      const current = await this.get(id);
      throw new StatusConflict(current.status, `only ${DELETABLE_IN.join(", ")} payouts can be deleted`);
    },
  };
}

export type PayoutService = ReturnType<typeof payoutService>;
