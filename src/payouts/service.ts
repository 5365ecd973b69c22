import { and, desc, eq, gte, inArray, lt, sql } from "drizzle-orm";
import { type Availability, FAULT_POLICIES } from "../db/availability";
import type { Db } from "../db/client";
import {
  DatabaseUnavailableError,
  errorCode,
  isDatabaseUnavailable,
  NothingStoredError,
  noAnswerWithin,
} from "../db/errors";
import { payouts } from "../db/schema";
import { NotFound, StatusConflict } from "../errors";
import type { Clock } from "../lib/clock";
import { page } from "../lib/lists";
import type { Logger } from "../lib/log";
import { deadline } from "../lib/timers";
import { type CreateResult, payoutCreates } from "./create";
import { type CreatePayoutInput, type Payout, STATUSES, toPayout, type UpdatePayoutInput } from "./model";
import { DELETABLE_IN, recordStatusChange, TERMS_EDITABLE_IN, TRANSITIONS } from "./status";
import { type ListQuery, payoutList } from "./validation";

const DEADLOCK_DETECTED = "40P01";

const CANCELLABLE_FROM = STATUSES.filter((s) => TRANSITIONS[s].includes("CANCELLED"));

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

/**
 * A statement that tells the events trigger who makes it: a CTE sets payouts.actor to the caller's
 * API key id, and `told` (ANDed into the statement's WHERE) reads it, so it is set before any row
 * changes and the statement-level trigger, which runs after them, reads it
 * (src/db/sql/audit-trail.sql). `true`: the setting is transaction-local and ends with this
 * statement's own transaction; never session-wide, which would name this key as the actor of the
 * next statements of whoever uses the pooled connection next (the worker's claims).
 */
function asActor(db: Db, apiKeyId: string) {
  const caller = db
    .$with("caller", { actor: sql<string>`actor` })
    .as(sql`SELECT set_config('payouts.actor', ${apiKeyId}, true) AS actor`);
  return { db: db.with(caller), told: sql`(SELECT actor FROM caller) IS NOT NULL` };
}

type PayoutServiceDeps = { db: Db; availability: Availability; clock: Clock; log: Logger };
type PayoutServiceOptions = {
  /** IDEMPOTENCY_KEY_TTL_MS: how long an Idempotency-Key stays bound to its first response. */
  idempotencyKeyTtlMs: number;
  /** CREATE_DEADLINE_MS: how long a create may take to commit, from its arrival. */
  createDeadlineMs: number;
};

/** Payout requests as clients see them: plain functions over the database, no HTTP in sight. */
export function payoutService(
  { db, availability, clock, log }: PayoutServiceDeps,
  { idempotencyKeyTtlMs, createDeadlineMs }: PayoutServiceOptions,
) {
  /**
   * Refuses at once while the database is known to be out of reach, and answers within `ms`
   * otherwise: no request waits on a dead connection. With `ms` null the work bounds its own
   * wait (a batch of creates: one timer for the batch's statement, not one per request).
   */
  const guarded = async <T>(work: () => Promise<T>, ms: number | null = FAULT_POLICIES.answer.withinMs): Promise<T> => {
    if (!availability.available) throw new NothingStoredError("the database cannot be reached");
    // A statement chosen as a deadlock's victim was rolled back whole: running it again is safe.
    const once = async (tries: number): Promise<T> => {
      try {
        return await work();
      } catch (error) {
        if (errorCode(error) !== DEADLOCK_DETECTED || tries === 0) throw error;
        return once(tries - 1);
      }
    };
    try {
      return await (ms === null ? once(2) : deadline(once(2), ms, noAnswerWithin));
    } catch (error) {
      // A failed connection says more than a slow answer: the probe decides when it is back.
      if (isDatabaseUnavailable(error) && !(error instanceof DatabaseUnavailableError)) availability.lost();
      throw error;
    }
  };

  const create = payoutCreates({ db, clock, guarded }, { idempotencyKeyTtlMs, createDeadlineMs });

  return {
    /** `apiKeyId`: the caller, whom the payout's events name as their actor. */
    create(input: CreatePayoutInput, apiKeyId: string, idempotencyKey?: string): Promise<CreateResult> {
      return create(input, apiKeyId, idempotencyKey);
    },

    async get(id: string): Promise<Payout> {
      const [row] = await guarded(() => db.select().from(payouts).where(eq(payouts.id, id)));
      if (!row) throw new NotFound();
      return toPayout(row);
    },

    /** Keyset pagination, newest first: each page is one index range scan, however deep. */
    async list(query: ListQuery): Promise<{ results: Payout[]; next_cursor: string | null }> {
      return page(await guarded(() => pageQuery(db, query)), query, payoutList, toPayout);
    },

    /**
     * One conditional UPDATE: when the change touches the terms or the status, it applies only
     * while the payout is still in a status that allows it. A worker's claim racing a cancel is
     * serialised by the row lock: exactly one of them matches.
     */
    async update(id: string, input: UpdatePayoutInput, apiKeyId: string): Promise<Payout> {
      const changesTerms =
        input.amount !== undefined || input.currency !== undefined || input.recipient_details !== undefined;
      const allowedFrom = STATUSES.filter(
        (s) =>
          (!changesTerms || TERMS_EDITABLE_IN.includes(s)) &&
          (input.status === undefined || CANCELLABLE_FROM.includes(s)),
      );
      const by = asActor(db, apiKeyId);
      const [row] = await guarded(() =>
        by.db
          .update(payouts)
          .set({
            amount: input.amount,
            currency: input.currency,
            recipientDetails: input.recipient_details,
            comment: input.comment,
            status: input.status,
            updatedAt: sql`now()`,
          })
          .where(and(eq(payouts.id, id), inArray(payouts.status, allowedFrom), by.told))
          .returning(),
      );
      if (row) {
        // The update matched, so a cancel found the payout NEW: its status did change.
        if (input.status === "CANCELLED") recordStatusChange(log.child({ payout_id: id }), "CANCELLED", {});
        return toPayout(row);
      }
      const current = await this.get(id);
      throw new StatusConflict(
        current.status,
        input.status
          ? "only a NEW payout can be cancelled"
          : "amount, currency and recipient_details change only while it is NEW",
      );
    },

    async remove(id: string, apiKeyId: string): Promise<void> {
      const by = asActor(db, apiKeyId);
      const [row] = await guarded(() =>
        by.db
          .delete(payouts)
          .where(and(eq(payouts.id, id), inArray(payouts.status, DELETABLE_IN), by.told))
          .returning({ id: payouts.id }),
      );
      if (row) return;
      const current = await this.get(id);
      throw new StatusConflict(current.status, `only ${DELETABLE_IN.join(", ")} payouts can be deleted`);
    },
  };
}

export type PayoutService = ReturnType<typeof payoutService>;
