import { AppError } from "../errors";
import type { Logger } from "../log";

export const PROBLEM_TYPE = "application/problem+json";

export function problemResponse(error: AppError, headers: Record<string, string> = {}): Response {
  const body = {
    type: "about:blank",
    title: error.title,
    status: error.status,
    code: error.code,
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    ...error.extra,
  };
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { "content-type": PROBLEM_TYPE, ...headers },
  });
}

// postgres.js and PGlite errors that mean the database cannot be reached right now.
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
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

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && UNAVAILABLE_CODES.has(code)) return true;
  }
  return false;
}

/** The one place where a thrown value becomes an HTTP response. */
export function toProblem(error: unknown, log: Logger, context: Record<string, unknown>): Response {
  if (error instanceof AppError) return problemResponse(error);
  if (isDatabaseUnavailable(error)) {
    log.warn("database unavailable", { ...context, err: error });
    return problemResponse(
      new AppError(503, "database_unavailable", "Service unavailable", "the database cannot be reached; try again"),
      { "retry-after": "1" },
    );
  }
  log.error("unhandled error", { ...context, err: error });
  return problemResponse(new AppError(500, "internal_error", "Internal server error", "an unexpected error occurred"));
}
