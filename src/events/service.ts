import { and, asc, desc, eq, gt, gte, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type PayoutEventRow, payoutEvents, payouts } from "../db/schema";
import { NotFound } from "../errors";
import { type PageQuery, page, unfilteredList } from "../lib/lists";
import type { Payout } from "../payouts/model";
import type { PayoutEvent } from "./model";
import { type EventListQuery, eventList } from "./validation";

export function toEvent(row: PayoutEventRow): PayoutEvent {
  return {
    id: row.id,
    type: row.type,
    payout_id: row.payoutId,
    attempt: row.attempt,
    created_at: row.createdAt.toISOString(),
    data: row.data as Payout,
    actor: row.actor,
  };
}

/**
 * The smallest UUID v7 of an instant's millisecond: an event's id starts with the millisecond of
 * its created_at (src/db/sql/audit-trail.sql), so a created_at bound is this id bound, and
 * every list is read from one index ordered by id.
 */
export function firstIdAt(at: Date): string {
  const ms = Math.min(Math.max(at.getTime(), 0), 2 ** 48 - 1);
  const hex = ms.toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8)}-0000-0000-000000000000`;
}

/**
 * One page of all events, newest first, one more row than asked for. Every filter and the cursor
 * are bounds on the id, alone or after the type or the payout: PostgreSQL reads the page from the
 * primary key or the (type, id) or (payout_id, id) index, backwards, and sorts nothing.
 */
export function eventsPageQuery(db: Db, query: EventListQuery) {
  return db
    .select()
    .from(payoutEvents)
    .where(
      and(
        query.type && eq(payoutEvents.type, query.type),
        query.payoutId ? eq(payoutEvents.payoutId, query.payoutId) : undefined,
        query.createdAfter && gte(payoutEvents.id, firstIdAt(query.createdAfter)),
        query.createdBefore && lt(payoutEvents.id, firstIdAt(query.createdBefore)),
        query.cursor && lt(payoutEvents.id, query.cursor.id),
      ),
    )
    .orderBy(desc(payoutEvents.id))
    .limit(query.limit + 1);
}

/** One page of a payout's history, oldest first, from the (payout_id, id) index. */
export function historyPageQuery(db: Db, payoutId: string, query: PageQuery) {
  return db
    .select()
    .from(payoutEvents)
    .where(and(eq(payoutEvents.payoutId, payoutId), query.cursor && gt(payoutEvents.id, query.cursor.id)))
    .orderBy(asc(payoutEvents.id))
    .limit(query.limit + 1);
}

type Page = { results: PayoutEvent[]; next_cursor: string | null };

/** The audit trail as clients read it. The trigger writes it; nothing here does. */
export function eventService({ db }: { db: Db }) {
  return {
    list: async (query: EventListQuery): Promise<Page> =>
      page(await eventsPageQuery(db, query), query, eventList, toEvent),

    /**
     * A payout's history, also after the payout is deleted. A payout stored before the trail
     * existed has an empty history; an id that was never a payout is a 404.
     */
    async history(payoutId: string, query: PageQuery): Promise<Page> {
      const events = page(await historyPageQuery(db, payoutId, query), query, unfilteredList, toEvent);
      if (events.results.length > 0 || query.cursor) return events;
      const [known] = await db.select({ found: sql`1` }).from(payouts).where(eq(payouts.id, payoutId));
      if (!known) throw new NotFound();
      return events;
    },
  };
}

export type EventService = ReturnType<typeof eventService>;
