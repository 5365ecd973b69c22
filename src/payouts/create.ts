import { createHash } from "node:crypto";
import { and, eq, getTableColumns, inArray, type SQL, sql } from "drizzle-orm";
import { type Db, resultRows } from "../db/client";
import {
  CreateOutcomeUnknownError,
  errorCode,
  isDatabaseUnavailable,
  KeyedCreateUnsettledError,
  NothingStoredError,
  neverReachedDatabase,
  noAnswerWithin,
  refusedForTime,
  schemaBehind,
} from "../db/errors";
import { AMOUNT_TYPE, COMMENT_MAX, idempotencyKeys, type PayoutRow, payouts, RECIPIENT_MAX } from "../db/schema";
import { IdempotencyKeyReused } from "../errors";
import { batched } from "../lib/batched";
import type { Clock } from "../lib/clock";
import { deadline } from "../lib/timers";
import { payoutsCreated } from "../metrics";
import { expired } from "./key-retention";
import { type CreatePayoutInput, Payout, toPayout } from "./model";

/**
 * A payout just inserted, as the API shows it: what the create sent (validated and canonical,
 * stored as it is) and the insert's timestamp. Only the insert's timestamp comes back from the
 * database, so no stored column is decoded and mapped back per row.
 */
const createdPayout = (input: CreatePayoutInput & { id: string }, createdAt: string): Payout => ({
  id: input.id,
  amount: input.amount,
  currency: input.currency,
  recipient_details: input.recipient_details,
  comment: input.comment,
  status: "NEW",
  failure_reason: null,
  created_at: createdAt,
  updated_at: createdAt,
  processed_at: null,
});

export type CreateResult = { payout: Payout; replayed: false } | { status: number; body: unknown; replayed: true };

/**
 * A create's time budget (issue 17). Its statement writes its row only while the database's clock
 * is before the create's deadline (`createDeadlineMs` after the request reached the service), and
 * PostgreSQL refuses to commit it at or after that deadline: a deferred check inside COMMIT, after
 * every trigger and lock wait (src/db/sql/create-deadline.sql). So once the deadline
 * has passed, a payout (or key) that is not in its table never will be: a create whose answer was
 * lost is settled by looking it up then. The deadline is set by the api's clock (the Clock port)
 * and judged by the database's. SETTLE_MS covers what follows the check (the commit record's WAL
 * flush) and the difference between the two clocks (NTP keeps it to milliseconds); a synchronous
 * standby that stops answering holds a commit past it (the one window left).
 *
 * Every create is answered within createDeadlineMs + SETTLE_MS + LOOKUP_TIMEOUT_MS of reaching the
 * service (the write, then at most one lookup in what is left of that budget); the contract
 * promises that plus SCHEDULING_MS for a loaded node: `createAnswerBoundMs`.
 */
const SETTLE_MS = 300;
const LOOKUP_TIMEOUT_MS = 400;
const SCHEDULING_MS = 500;

/** How long a create may take to be answered, keyed or not, with this CREATE_DEADLINE_MS. */
export const createAnswerBoundMs = (createDeadlineMs: number) =>
  createDeadlineMs + SETTLE_MS + LOOKUP_TIMEOUT_MS + SCHEDULING_MS;

const UNIQUE_VIOLATION = "23505";

/**
 * A create with everything decided before any statement runs: a re-run writes the same row.
 * `createdBy` is the API key that sent it, which its payout.created event names as its actor.
 */
type NewPayout = CreatePayoutInput & { id: string; deadline: Date; createdBy: string };

const newPayout = (input: CreatePayoutInput, apiKeyId: string, clock: Clock, deadlineMs: number): NewPayout => ({
  ...input,
  id: Bun.randomUUIDv7(),
  deadline: new Date(clock.now() + deadlineMs),
  createdBy: apiKeyId,
});

/** When a create whose answer was lost is looked up: its deadline, and the commit's flush after it. */
const settleTime = (payout: NewPayout) => payout.deadline.getTime() + SETTLE_MS;
/** When a create is answered at the latest: its settle time and one lookup. */
const answerTime = (payout: NewPayout) => settleTime(payout) + LOOKUP_TIMEOUT_MS;

const notStored = () =>
  new NothingStoredError("the database did not store the payout before its deadline; nothing was created");

const fingerprint = (input: CreatePayoutInput) =>
  createHash("sha256")
    .update(JSON.stringify([input.amount, input.currency, input.recipient_details, input.comment]))
    .digest("hex");

/** jsonb keeps keys in an order of its own: a replay puts them back, byte for byte the first response. */
const inPayoutOrder = (stored: unknown) => {
  const body = stored as Record<string, unknown>;
  return Object.fromEntries(Object.keys(Payout.properties).map((field) => [field, body[field]]));
};

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
  createdBy: sql`t.created_by`,
};

// The batch's JSON records are read as the columns' own types, limits included.
const AMOUNT_COLUMN = sql.raw(AMOUNT_TYPE);
const RECIPIENT_COLUMN = sql.raw(`varchar(${RECIPIENT_MAX})`);
const COMMENT_COLUMN = sql.raw(`varchar(${COMMENT_MAX})`);

/** The columns a create sends, in the order of the batch's JSON records. */
const createRecord = (p: NewPayout) => ({
  id: p.id,
  amount: p.amount,
  currency: p.currency,
  recipient_details: p.recipient_details,
  comment: p.comment,
  deadline: p.deadline.toISOString(),
  created_by: p.createdBy,
});

/**
 * The service's fault policy (payoutService's `guarded`): refuses while the database is out of
 * reach, retries a deadlock's victim, and answers within `ms` (null: the work bounds its own wait).
 */
type Guarded = <T>(work: () => Promise<T>, ms?: number | null) => Promise<T>;

/**
 * The create path: keyless creates batched into one INSERT, keyed creates written with their key
 * in one statement, and each settled when its answer was lost. Every create is committed before
 * its deadline or never (src/db/sql/create-deadline.sql).
 */
export function payoutCreates(
  { db, clock, guarded }: { db: Db; clock: Clock; guarded: Guarded },
  { idempotencyKeyTtlMs, createDeadlineMs }: { idempotencyKeyTtlMs: number; createDeadlineMs: number },
) {
  /** A create's statement refused for lack of time rolled back: certainly nothing was stored. */
  const timeRefusalNotStored = (error: unknown): never => {
    throw refusedForTime(error) ? notStored() : error;
  };

  // Creates without a key that arrive together are one multi-row INSERT: one round trip and one
  // commit for all of them, each request still answered only after that commit. Each row carries
  // its id and deadline, so a batch run again (its commit lost with the connection) writes no row
  // twice: ON CONFLICT finds the first, and a row past its deadline is written by no run. The
  // fence names the earliest deadline among the rows written, which the commit is then checked
  // against (src/db/sql/create-deadline.sql): the batch commits before every one of its rows'
  // deadlines, or not at all. `input` is materialized, so each row's clock check runs once and both
  // CTEs read its result.
  // Prepared once: the batch travels as one JSON parameter, so no SQL is built per request.
  const insertMany = db
    .insert(payouts)
    .select(
      sql`WITH input AS MATERIALIZED (
            SELECT * FROM jsonb_to_recordset(${sql.placeholder("rows")}::jsonb)
              AS t(id uuid, amount ${AMOUNT_COLUMN}, currency currency, recipient_details ${RECIPIENT_COLUMN},
                   comment ${COMMENT_COLUMN}, deadline timestamptz, created_by text)
            WHERE clock_timestamp() < t.deadline
          ), fence AS (
            SELECT create_deadline_fence(min(deadline)) AS fenced FROM input HAVING count(*) > 0
          )
          SELECT ${sql.join(
            Object.keys(getTableColumns(payouts)).map((column) => NEW_ROW[column as keyof PayoutRow]),
            sql`, `,
          )}
          FROM input t CROSS JOIN fence WHERE fence.fenced`,
    )
    .onConflictDoNothing({ target: payouts.id })
    .returning({ id: payouts.id, createdAt: payouts.createdAt })
    .prepare("insert_payouts");

  const writeBatch = async (batch: NewPayout[]): Promise<(Payout | undefined)[]> => {
    const rows = await insertMany.execute({ rows: JSON.stringify(batch.map(createRecord)) });
    const insertedAt = new Map(rows.map((row) => [row.id, row.createdAt.toISOString()]));
    const missing = batch.filter((p) => !insertedAt.has(p.id)).map((p) => p.id);
    // Rows a lost commit already wrote; the rest were past their deadline.
    const written = new Map<string, Payout>();
    if (missing.length > 0) {
      for (const row of await db.select().from(payouts).where(inArray(payouts.id, missing))) {
        written.set(row.id, toPayout(row));
      }
    }
    return batch.map((p) => {
      const createdAt = insertedAt.get(p.id);
      return createdAt ? createdPayout(p, createdAt) : written.get(p.id);
    });
  };

  /**
   * One payout per input, or undefined when its deadline passed before the statement ran. The
   * batch answers by the earliest settle time among its creates, or fails as unavailable: one
   * timer for all of them.
   */
  const insertBatch = batched(
    (batch: NewPayout[]) =>
      deadline(writeBatch(batch), Math.min(...batch.map(settleTime)) - clock.now(), noAnswerWithin).catch(
        timeRefusalNotStored,
      ),
    { maxSize: 200, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable },
  );

  /**
   * A create without a key: its batch's write and, when the answer is lost (a dropped or silent
   * connection), a lookup of the payout's id once its settle time has come: found, it is the
   * answer; absent, 503 (it never will be there); CreateOutcomeUnknownError, naming the id, only
   * when the database cannot even be asked.
   */
  const createOne = async (input: CreatePayoutInput, apiKeyId: string): Promise<Payout> => {
    const payout = newPayout(input, apiKeyId, clock, createDeadlineMs);
    try {
      const created = await guarded(() => insertBatch(payout), null);
      if (!created) throw notStored();
      return created;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || neverReachedDatabase(error)) throw error;
    }
    await Bun.sleep(Math.max(0, settleTime(payout) - clock.now()));
    let row: PayoutRow | undefined;
    try {
      [row] = await deadline(
        db.select().from(payouts).where(eq(payouts.id, payout.id)),
        LOOKUP_TIMEOUT_MS,
        noAnswerWithin,
      );
    } catch {
      throw new CreateOutcomeUnknownError(payout.id);
    }
    if (!row) throw notStored();
    return toPayout(row);
  };

  /**
   * An Idempotency-Key as stored: the value the client sent, of the API key that sent it (docs:
   * access-control). Every read and write of a key names both, so two API keys' equal values are
   * two keys; the primary key (api_key_id, key) serves each lookup.
   */
  const keyIs = (apiKeyId: string, key: string) =>
    and(eq(idempotencyKeys.apiKeyId, apiKeyId), eq(idempotencyKeys.key, key)) as SQL;

  /** The key's payout and its row (with the first response) written together, or nothing. */
  const writeKeyed = async (payout: NewPayout, key: string, print: string, response: Payout) => {
    const owned = keyIs(payout.createdBy, key);
    try {
      // An expired key (older than the TTL, not yet purged) is deleted first and taken anew; the
      // payout's SELECT reads `expired_key` so that the DELETE runs before both INSERTs. The fence
      // names the deadline the commit is checked against (src/db/sql/create-deadline.sql).
      const result = await db.execute(sql`
        WITH expired_key AS (
          DELETE FROM ${idempotencyKeys}
          WHERE ${owned} AND ${expired(idempotencyKeyTtlMs)}
          RETURNING 1
        ), payout AS (
          INSERT INTO ${payouts} (id, amount, currency, recipient_details, comment, created_at, updated_at, created_by)
          SELECT ${payout.id}::uuid, ${payout.amount}::numeric, ${payout.currency}::currency,
                 ${payout.recipient_details}, ${payout.comment}, ${response.created_at}::timestamptz,
                 ${response.created_at}::timestamptz, ${payout.createdBy}
          WHERE clock_timestamp() < ${payout.deadline.toISOString()}::timestamptz
            AND create_deadline_fence(${payout.deadline.toISOString()}::timestamptz)
            AND (SELECT count(*) FROM expired_key) >= 0
            AND NOT EXISTS (SELECT 1 FROM ${idempotencyKeys} WHERE ${owned} AND NOT ${expired(idempotencyKeyTtlMs)})
          RETURNING id
        )
        INSERT INTO ${idempotencyKeys} (api_key_id, key, fingerprint, payout_id, response_status, response_body)
        SELECT ${payout.createdBy}::uuid, ${key}, ${print}, id, 201, ${JSON.stringify(response)}::jsonb FROM payout
        RETURNING payout_id`);
      // Nothing written: the key was taken, or the statement ran after its deadline.
      return resultRows(result).length > 0 ? "created" : "not written";
    } catch (error) {
      // Another request with the key committed first: this one rolled back.
      if (errorCode(error) === UNIQUE_VIOLATION) return "not written";
      return timeRefusalNotStored(error);
    }
  };

  /**
   * With an idempotency key, the payout and the key's row (with the first response) are one
   * statement, so they commit together or not at all, before the deadline or never. A concurrent
   * request with the same key waits on the key's unique index until the first commits, then fails
   * on it and replays the stored response: one payout, whatever the number of requests. A key
   * older than the TTL counts as absent even before the purge deletes it: the same key creates a
   * new payout, and concurrent requests with it still create one (the later ones fail on the new row).
   *
   * The key is the caller's own (`apiKeyId`'s): another API key's equal value is another key, never
   * replayed, never refused as reused (a rolled key keeps its id, so its keys).
   *
   * Whatever this request did not create itself is settled by the key, never by its own fresh id
   * (an id no payout may ever have, while the key's payout exists under another): the key's row
   * found is replayed; not found after the deadline, or not readable, is a
   * KeyedCreateUnsettledError that tells the client to retry with the same key. The key lookup
   * gets what is left of the create's budget (answerTime), so a keyed create answers as soon as any.
   */
  const createIdempotent = async (input: CreatePayoutInput, apiKeyId: string, key: string): Promise<CreateResult> => {
    const print = fingerprint(input);
    const payout = newPayout(input, apiKeyId, clock, createDeadlineMs);
    const response = createdPayout(payout, new Date(clock.now()).toISOString());
    let written: "created" | "not written" | "unknown";
    try {
      written = await guarded(() => writeKeyed(payout, key, print, response), settleTime(payout) - clock.now());
    } catch (error) {
      if (neverReachedDatabase(error) || schemaBehind(error)) {
        throw new KeyedCreateUnsettledError("nothing_created", { cause: error });
      }
      if (!isDatabaseUnavailable(error)) throw error;
      written = "unknown";
    }
    if (written === "created") return { payout: response, replayed: false };
    // A statement whose answer was lost has committed by its settle time, or never will.
    if (written === "unknown") await Bun.sleep(Math.max(0, settleTime(payout) - clock.now()));
    let first: typeof idempotencyKeys.$inferSelect | undefined;
    try {
      [first] = await guarded(
        () => db.select().from(idempotencyKeys).where(keyIs(apiKeyId, key)),
        Math.max(0, answerTime(payout) - clock.now()),
      );
    } catch (error) {
      if (!isDatabaseUnavailable(error) && !schemaBehind(error)) throw error;
      throw new KeyedCreateUnsettledError(written === "unknown" ? "unknown" : "nothing_created", { cause: error });
    }
    // Neither written nor taken: the statement ran (or would commit) after its deadline.
    if (!first) throw new KeyedCreateUnsettledError("nothing_created");
    if (first.fingerprint !== print) throw new IdempotencyKeyReused();
    // This request's own statement committed, its answer lost: it is the create, not a replay.
    if (first.payoutId === payout.id) return { payout: response, replayed: false };
    return { status: first.responseStatus, body: inPayoutOrder(first.responseBody), replayed: true };
  };

  /** `apiKeyId`: the caller, the payout's creator and the owner of its Idempotency-Key. */
  return async (input: CreatePayoutInput, apiKeyId: string, idempotencyKey?: string): Promise<CreateResult> => {
    const result =
      idempotencyKey === undefined
        ? { payout: await createOne(input, apiKeyId), replayed: false as const }
        : await createIdempotent(input, apiKeyId, idempotencyKey);
    if (!result.replayed) payoutsCreated.inc();
    return result;
  };
}
