import { and, eq, inArray, lt, or, sql } from "drizzle-orm";
import type { Db } from "../../db/client";
import { payoutOutbox, payouts } from "../../db/schema";
import type { Logger } from "../../lib/log";
import { every, type Loop } from "../../lib/timers";
import type { Publisher } from "../../queue/port";

export type OutboxOptions = {
  /** How often the relay looks for payouts that were never handed to the broker. */
  intervalMs: number;
  /** An outbox row younger than this is left to the api's own hand-off. */
  graceMs: number;
  /** A PROCESSING payout untouched for this long has lost its message: publish it again. */
  stuckAfterMs: number;
  /**
   * A NEW payout created (or last published again) this long ago, out of the outbox and still not
   * claimed, has lost its message (a broker that lost its data, a purged queue): publish it again.
   * Longer than a backlog takes to drain; a duplicate finds nothing to claim.
   */
  republishAfterMs: number;
};

const BATCH = 500;
/** How long confirmed ids gather before one DELETE takes them out of the outbox. */
const CLEAR_CONFIRMED_MS = 100;

/**
 * Gets every committed payout to the broker. Each NEW payout's insert writes its row in
 * `payout_outbox` in the same transaction (a trigger, src/db/sql/outbox.sql); the api hands each
 * one off right after its commit (`handOff`) and deletes the row once the broker confirmed. The
 * relay publishes the rows that are left (broker down, api crashed between commit and publish),
 * and again the payouts whose message was lost: NEW for longer than `republishAfterMs`, or
 * PROCESSING and untouched for `stuckAfterMs`. A payout is published at least once; a duplicate
 * message finds nothing to claim.
 */
export function createOutbox(
  { db, publisher, log }: { db: Db; publisher: Publisher; log: Logger },
  options: OutboxOptions,
) {
  let pending: string[] = [];
  let flushing: Promise<void> | undefined;
  let relay: Loop | undefined;

  // One parameter whatever the batch size: each statement is prepared once by the driver.
  const confirmed = (ids: string[]) =>
    sql`${payoutOutbox.payoutId} = ANY(string_to_array(${ids.join(",")}, ',')::uuid[])`;
  const deleteConfirmed = db
    .delete(payoutOutbox)
    .where(sql`${payoutOutbox.payoutId} = ANY(string_to_array(${sql.placeholder("ids")}, ',')::uuid[])`)
    .prepare("outbox_confirmed");

  // Confirmed ids leave the outbox together, CLEAR_CONFIRMED_MS after the first of them: one
  // DELETE and one commit for all the batches confirmed meanwhile, not one per batch. Until then
  // (and should the DELETE fail) a row only waits; the relay leaves it alone for `graceMs`.
  let confirmedIds: string[] = [];
  let clearTimer: Timer | undefined;
  let clearing: Promise<void> | undefined;
  const clearConfirmed = async () => {
    clearTimer = undefined;
    const ids = confirmedIds;
    confirmedIds = [];
    if (ids.length === 0) return;
    try {
      await deleteConfirmed.execute({ ids: ids.join(",") });
    } catch (err) {
      log.warn("confirmed payouts stay in the outbox; the relay will publish them again", { count: ids.length, err });
    }
  };

  // Hand-offs arriving together are published together: one batch of pipelined confirms.
  const flush = async () => {
    while (pending.length > 0) {
      const ids = pending;
      pending = [];
      if (!publisher.connected) return; // the relay publishes them once the broker is back
      try {
        await publisher.publish(ids.map((id) => ({ id })));
      } catch (err) {
        log.warn("hand-off failed; the relay will publish these payouts", { count: ids.length, err });
        continue;
      }
      confirmedIds.push(...ids);
      clearTimer ??= setTimeout(() => {
        clearing = clearConfirmed();
      }, CLEAR_CONFIRMED_MS);
    }
  };

  /** Outbox rows older than the hand-off's grace: committed payouts the broker never confirmed. */
  const relayOutbox = (tx: Db) =>
    tx
      .select({ id: payoutOutbox.payoutId })
      .from(payoutOutbox)
      .where(lt(payoutOutbox.createdAt, sql`now() - make_interval(secs => ${options.graceMs / 1000})`))
      .limit(BATCH)
      .for("update", { skipLocked: true });

  /** Payouts whose message was lost: NEW long after it was published, or PROCESSING with no sign of life. */
  const relayLost = (tx: Db) =>
    tx
      .select({ id: payouts.id, status: payouts.status })
      .from(payouts)
      .where(
        or(
          and(
            eq(payouts.status, "NEW"),
            lt(payouts.createdAt, sql`now() - make_interval(secs => ${options.republishAfterMs / 1000})`),
            lt(
              sql`coalesce(${payouts.publishedAt}, ${payouts.createdAt})`,
              sql`now() - make_interval(secs => ${options.republishAfterMs / 1000})`,
            ),
            // Still in the outbox: relayOutbox publishes it.
            sql`NOT EXISTS (SELECT 1 FROM ${payoutOutbox} WHERE ${payoutOutbox.payoutId} = ${payouts.id})`,
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

  /**
   * One relay pass: locks a batch (SKIP LOCKED, so relays on many replicas share the work instead
   * of waiting), publishes it with confirms, then deletes the outbox rows, or marks the lost
   * payouts published so that they wait `republishAfterMs` or `stuckAfterMs` again, and commits.
   * Returns how many were published.
   */
  const relayOnce = async (): Promise<number> => {
    if (!publisher.connected) return 0;
    return db.transaction(async (tx) => {
      const queued = await relayOutbox(tx);
      if (queued.length > 0) {
        const ids = queued.map((r) => r.id);
        await publisher.publish(ids.map((id) => ({ id })));
        await tx.delete(payoutOutbox).where(confirmed(ids));
        log.info("relay published payouts", { count: ids.length });
        return ids.length;
      }
      const lost = await relayLost(tx);
      if (lost.length === 0) return 0;
      await publisher.publish(lost.map((r) => (r.status === "PROCESSING" ? { id: r.id, resume: true } : { id: r.id })));
      await tx
        .update(payouts)
        .set({ publishedAt: sql`now()` })
        .where(sql`${payouts.id} = ANY(string_to_array(${lost.map((r) => r.id).join(",")}, ',')::uuid[])`);
      log.info("relay published payouts again", { count: lost.length });
      return lost.length;
    });
  };

  // A full batch says more are waiting: the next one goes at once, not an interval later.
  const relayPass = async (stopping: AbortSignal) => {
    for (let published = BATCH; published === BATCH && !stopping.aborted; ) published = await relayOnce();
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
      relay = every(options.intervalMs, relayPass, { name: "relay pass", log });
    },
    async stop() {
      await relay?.stop();
      await flushing;
      clearTimeout(clearTimer);
      await clearing;
      await clearConfirmed();
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
