import { type FieldError, IdempotencyKeyReused, NotFound, StatusConflict, ValidationFailed } from "../errors";
import type { Logger } from "../log";
import type { Status } from "../payouts/model";

export const PROBLEM_TYPE = "application/problem+json";

/** Every `code` a problem+json body of this service can carry (the OpenAPI document lists them). */
export const PROBLEM_CODES = [
  "validation_error",
  "invalid_json",
  "invalid_host",
  "not_found",
  "method_not_allowed",
  "status_conflict",
  "payload_too_large",
  "unsupported_media_type",
  "idempotency_key_reused",
  "database_unavailable",
  "internal_error",
] as const;
export type ProblemCode = (typeof PROBLEM_CODES)[number];

/** An RFC 9457 body, less its `type` (always about:blank). */
export type Problem = {
  status: number;
  code: ProblemCode;
  title: string;
  detail: string;
  errors?: FieldError[];
  current_status?: Status;
};

/** A refusal of the HTTP exchange itself (the body's size or type, the route, the Host). */
export class HttpProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

export function problemResponse(problem: Problem, headers: Record<string, string> = {}): Response {
  const { status, code, title, detail, ...extra } = problem;
  return new Response(JSON.stringify({ type: "about:blank", title, status, code, detail, ...extra }), {
    status,
    headers: { "content-type": PROBLEM_TYPE, ...headers },
  });
}

/** What HTTP says about each error the domain reports. */
function domainProblem(error: unknown): Problem | undefined {
  if (error instanceof ValidationFailed) {
    return {
      status: 400,
      code: "validation_error",
      title: "Validation failed",
      detail: error.message,
      errors: error.errors,
    };
  }
  if (error instanceof NotFound) return { status: 404, code: "not_found", title: "Not found", detail: error.message };
  if (error instanceof StatusConflict) {
    return {
      status: 409,
      code: "status_conflict",
      title: "Status forbids the change",
      detail: error.message,
      current_status: error.current,
    };
  }
  if (error instanceof IdempotencyKeyReused) {
    return { status: 422, code: "idempotency_key_reused", title: "Idempotency key reused", detail: error.message };
  }
  return undefined;
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
  if (error instanceof HttpProblem) return problemResponse(error.problem);
  const problem = domainProblem(error);
  if (problem) return problemResponse(problem);
  if (isDatabaseUnavailable(error)) {
    log.warn("database unavailable", { ...context, err: error });
    return problemResponse(
      {
        status: 503,
        code: "database_unavailable",
        title: "Service unavailable",
        detail: "the database cannot be reached; try again",
      },
      { "retry-after": "1" },
    );
  }
  log.error("unhandled error", { ...context, err: error });
  return problemResponse({
    status: 500,
    code: "internal_error",
    title: "Internal server error",
    detail: "an unexpected error occurred",
  });
}
