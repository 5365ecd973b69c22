import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { payouts } from "../db/schema";
import type { Logger } from "../log";
import type { PayoutMessage, Publisher } from "./port";

export type OutboxOptions = {
  /** How often the relay looks for payouts that were never handed to the broker. */
  intervalMs: number;
  /** A NEW payout younger than this is left to the api's own hand-off. */
  graceMs: number;
  /** A PROCESSING payout untouched for this long has lost its message: publish it again. */
  stuckAfterMs: number;
  /**
   * A NEW payout published this long ago and still not claimed has lost its message (a broker
   * that lost its data, a purged queue): publish it again. Longer than a backlog takes to drain;
   * a duplicate finds nothing to claim.
   */
  republishAfterMs: number;
};

const BATCH = 500;

/**
 * Gets every committed payout to the broker: the api hands each one off right after its commit
 * (`handOff`), and the relay publishes whatever that missed (broker down, api crashed between
 * commit and publish). `published_at` is set only after the broker confirmed, so a payout is
 * published at least once; a duplicate message finds nothing to claim.
 */
export function createOutbox(db: Db, publisher: Publisher, options: OutboxOptions, log: Logger) {
  let pending: string[] = [];
  let flushing: Promise<void> | undefined;
  let timer: Timer | undefined;
  let relaying: Promise<number> | undefined;

  // One parameter whatever the batch size: the statement is prepared once by the driver.
  const markPublished = (handle: Db, ids: string[]) =>
    handle
      .update(payouts)
      .set({ publishedAt: sql`now()` })
      .where(sql`${payouts.id} = ANY(string_to_array(${ids.join(",")}, ',')::uuid[])`);

  // Hand-offs arriving together are published together: one batch of pipelined confirms and one
  // UPDATE for all of them.
  const flush = async () => {
    while (pending.length > 0) {
      const ids = pending;
      pending = [];
      if (!publisher.connected) return; // the relay publishes them once the broker is back
      try {
        await publisher.publish(ids.map((id) => ({ id })));
        await markPublished(db, ids);
      } catch (err) {
        log.warn("hand-off failed; the relay will publish these payouts", { count: ids.length, err });
      }
    }
  };

  /**
   * One relay pass: locks a batch of unpublished payouts (SKIP LOCKED, so relays on many replicas
   * share the work instead of waiting), publishes them with confirms, marks them, commits.
   * Returns how many were published.
   */
  const relayOnce = async (): Promise<number> => {
    if (!publisher.connected) return 0;
    return db.transaction(async (tx) => {
      const rows = await tx
        .select({ id: payouts.id, status: payouts.status })
        .from(payouts)
        .where(
          or(
            and(
              eq(payouts.status, "NEW"),
              isNull(payouts.publishedAt),
              lt(payouts.createdAt, sql`now() - make_interval(secs => ${options.graceMs / 1000})`),
            ),
            and(
              eq(payouts.status, "NEW"),
              lt(payouts.publishedAt, sql`now() - make_interval(secs => ${options.republishAfterMs / 1000})`),
            ),
            and(
              eq(payouts.status, "PROCESSING"),
              lt(
                sql`coalesce(greatest(${payouts.claimedAt}, ${payouts.publishedAt}), ${payouts.updatedAt})`,
                sql`now() - make_interval(secs => ${options.stuckAfterMs / 1000})`,
              ),
            ),
          ),
        )
        .orderBy(payouts.createdAt)
        .limit(BATCH)
        .for("update", { skipLocked: true });
      if (rows.length === 0) return 0;
      const messages: PayoutMessage[] = rows.map((r) =>
        r.status === "PROCESSING" ? { id: r.id, resume: true } : { id: r.id },
      );
      await publisher.publish(messages);
      await markPublished(
        tx,
        rows.map((r) => r.id),
      );
      log.info("relay published payouts", { count: rows.length });
      return rows.length;
    });
  };

  const tick = async () => {
    try {
      relaying = relayOnce();
      while ((await relaying) === BATCH) relaying = relayOnce();
    } catch (err) {
      log.warn("relay pass failed; will try again", { err });
    } finally {
      relaying = undefined;
      if (timer !== undefined) timer = setTimeout(tick, options.intervalMs);
    }
  };

  return {
    /** Called after the payout's commit; never throws, never waits for the broker. */
    handOff(id: string) {
      pending.push(id);
      flushing ??= Promise.resolve()
        .then(flush)
        .finally(() => {
          flushing = undefined;
        });
    },
    relayOnce,
    start() {
      timer = setTimeout(tick, 0);
    },
    async stop() {
      clearTimeout(timer);
      timer = undefined;
      await relaying?.catch(() => {});
      await flushing;
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;

/**
 * The in-process queue forgets everything on a restart: every payout it had not finished is
 * published to it again at start-up, PROCESSING ones for takeover.
 */
export async function recoverInProcess(db: Db, publisher: Publisher, log: Logger): Promise<void> {
  const rows = await db
    .select({ id: payouts.id, status: payouts.status })
    .from(payouts)
    .where(inArray(payouts.status, ["NEW", "PROCESSING"]));
  await publisher.publish(rows.map((r) => ({ id: r.id, resume: r.status === "PROCESSING" })));
  if (rows.length > 0) log.info("recovered unfinished payouts", { count: rows.length });
}
