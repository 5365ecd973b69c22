import type { Logger } from "../lib/log";
import { payoutStatusChanges } from "../metrics";
import type { Status } from "./model";

/**
 * The status machine. src/db/sql/status-machine.sql enforces the same rules in the database;
 * every write below is also conditional on the status it expects.
 *
 *   NEW --worker--> PROCESSING --worker--> COMPLETED
 *    |                   '------worker---> FAILED
 *    '--client--> CANCELLED
 */
export const TRANSITIONS: Record<Status, readonly Status[]> = {
  NEW: ["PROCESSING", "CANCELLED"],
  PROCESSING: ["COMPLETED", "FAILED"],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
};

/** amount, currency and recipient_details change only in these statuses; comment in any. */
export const TERMS_EDITABLE_IN: readonly Status[] = ["NEW"];

/** PROCESSING and COMPLETED payouts are kept: money is moving or has moved. */
export const DELETABLE_IN: readonly Status[] = ["NEW", "CANCELLED", "FAILED"];

/**
 * A payout's status changed: one log line (a warning for FAILED) and one count, the same wherever
 * the change is made (a worker's claim or outcome, a client's cancel). `log` names the payout.
 */
export function recordStatusChange(log: Logger, status: Exclude<Status, "NEW">, fields: Record<string, unknown>) {
  if (status === "FAILED") log.warn("payout status changed", { status, ...fields });
  else log.info("payout status changed", { status, ...fields });
  payoutStatusChanges.inc({ status });
}
