// postgres.js and PGlite errors that mean the database cannot be reached right now.
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "57014", // query_canceled (statement_timeout)
  "53300", // too_many_connections
]);

/** The database did not answer: refused before anything was sent, or no answer in time. */
export class DatabaseUnavailableError extends Error {}

/** Certainly nothing was written: the database was not asked, or it refused the write. */
export class NothingStoredError extends DatabaseUnavailableError {}

/**
 * A create whose commit cannot be confirmed or ruled out: the statement was sent, then the
 * connection failed or went silent, and the database could not be asked afterwards. The payout
 * with this id either exists or never will (see src/payouts/service.ts `create`).
 */
export class CreateOutcomeUnknownError extends Error {
  constructor(readonly payoutId: string) {
    super(`the database did not confirm whether payout ${payoutId} was stored`);
  }
}

// Failures to open a connection: no statement was sent on it.
const NOT_CONNECTED_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "CONNECT_TIMEOUT",
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
]);

/** The error's code, or its cause's (drizzle wraps the driver's errors). */
export function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof DatabaseUnavailableError) return true;
  }
  return UNAVAILABLE_CODES.has(errorCode(error) ?? "");
}

/** Whether the failure certainly happened before the statement reached the database. */
export function neverReachedDatabase(error: unknown): boolean {
  return error instanceof NothingStoredError || NOT_CONNECTED_CODES.has(errorCode(error) ?? "");
}

/** A create that reached its commit at or after its deadline, rolled back (src/db/sql/create-deadline.sql). */
const CREATE_DEADLINE_PASSED = "PD001";
const LOCK_NOT_AVAILABLE = "55P03";

/**
 * A create's statement the database refused for lack of time, and rolled back: its commit came
 * after its deadline, or a lock wait outlasted the lock timeout its fence set to that deadline.
 * Nothing was stored, and the database is not down (no breaker trips).
 */
export function refusedForTime(error: unknown): boolean {
  const code = errorCode(error);
  return code === CREATE_DEADLINE_PASSED || code === LOCK_NOT_AVAILABLE;
}

// The database answers but lacks a table, column, type or function the code uses: its schema is
// older than this build (a migration has not run yet). /health/ready says "schema behind" then.
const SCHEMA_BEHIND_CODES = new Set(["42P01", "42703", "42704", "42883"]);

export function schemaBehind(error: unknown): boolean {
  return SCHEMA_BEHIND_CODES.has(errorCode(error) ?? "");
}

/**
 * A create with an Idempotency-Key that this request could not settle by its key (the key's row
 * could not be read, or holds nothing after the deadline). The key decides: a retry with the same
 * key returns the key's payout, or creates it once. `nothing_created`: this request certainly
 * created nothing (an earlier one with the key may have); `unknown`: this request's statement may
 * have committed, and the database could not be asked.
 */
export class KeyedCreateUnsettledError extends Error {
  constructor(
    readonly outcome: "nothing_created" | "unknown",
    options?: ErrorOptions,
  ) {
    super(
      outcome === "unknown"
        ? "the database did not confirm whether this keyed create was stored"
        : "this keyed create stored nothing",
      options,
    );
  }
}

/** For `deadline` (src/lib/timers.ts): a statement with no answer in time counts as the database's outage. */
export const noAnswerWithin = (ms: number) =>
  new DatabaseUnavailableError(`the database did not answer within ${ms} ms`);
