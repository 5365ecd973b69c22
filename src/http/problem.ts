import { Type } from "@sinclair/typebox";
import {
  CreateOutcomeUnknownError,
  isDatabaseUnavailable,
  KeyedCreateUnsettledError,
  schemaBehind,
} from "../db/errors";
import {
  type FieldError,
  IdempotencyKeyReused,
  KeyConflict,
  MissingScope,
  NotFound,
  StatusConflict,
  ValidationFailed,
} from "../errors";
import { Enum } from "../lib/kinds";
import type { Logger } from "../lib/log";
import { STATUSES, type Status } from "../payouts/model";

// A create's 504 is answered only after its deadline and settle time have passed, so its payout is
// already there or never will be (src/payouts/service.ts); the wait gives the database time to be
// reachable again for the GET.
const OUTCOME_SETTLES_S = 5;

/** What a keyed create's client must do when this request could not settle its key. */
export const RETRY_WITH_KEY =
  "retry with the same Idempotency-Key: it returns the payout if an attempt with this key created it, or creates it once. Do not send the request with another key or without one.";

export const PROBLEM_TYPE = "application/problem+json";

/** Every `code` a problem+json body of this service can carry (the OpenAPI document lists them). */
export const PROBLEM_CODES = [
  "validation_error",
  "invalid_json",
  "invalid_host",
  "unauthorized",
  "missing_scope",
  "not_found",
  "method_not_allowed",
  "status_conflict",
  "key_conflict",
  "payload_too_large",
  "unsupported_media_type",
  "idempotency_key_reused",
  "database_unavailable",
  "create_outcome_unknown",
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
  payout_id?: string;
  scope?: string;
};

/** The problem+json body, for the OpenAPI document. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ enum: ["about:blank"] }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    code: Enum(PROBLEM_CODES, { description: "Stable and machine-readable: what went wrong." }),
    detail: Type.String({ description: "For people: what went wrong with this request." }),
    current_status: Type.Optional(Enum(STATUSES, { description: "With status_conflict: the payout's status." })),
    payout_id: Type.Optional(
      Type.String({
        format: "uuid",
        description:
          "With create_outcome_unknown for a create without an Idempotency-Key: the payout to look up once Retry-After has passed. A keyed create's answers never carry it: its key decides.",
      }),
    ),
    scope: Type.Optional(Type.String({ description: "With missing_scope: the scope the API key lacks." })),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String(), message: Type.String() }), {
        description: 'With validation_error: every invalid field, header or query parameter ("" for the whole body).',
      }),
    ),
  },
  { description: "RFC 9457 problem details, served as application/problem+json." },
);

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

/**
 * Every refused credential alike: missing, malformed, unknown, wrong, expired or revoked (the
 * answer must not tell which ids exist). Sent with WWW-Authenticate: Bearer.
 */
export const UNAUTHORIZED: Problem = {
  status: 401,
  code: "unauthorized",
  title: "Unauthorized",
  detail: "a valid API key is required: Authorization: Bearer <key>",
};

/** What HTTP says about each error the domain reports. */
export function domainProblem(error: unknown): Problem | undefined {
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
  if (error instanceof MissingScope) {
    return { status: 403, code: "missing_scope", title: "Missing scope", detail: error.message, scope: error.scope };
  }
  if (error instanceof KeyConflict) {
    return { status: 409, code: "key_conflict", title: "The key's state forbids the change", detail: error.message };
  }
  if (error instanceof IdempotencyKeyReused) {
    return { status: 422, code: "idempotency_key_reused", title: "Idempotency key reused", detail: error.message };
  }
  return undefined;
}

/** The one place where a thrown value becomes an HTTP response. */
export function toProblem(error: unknown, log: Logger, context: Record<string, unknown>): Response {
  if (error instanceof HttpProblem) return problemResponse(error.problem);
  const problem = domainProblem(error);
  if (problem) return problemResponse(problem);
  if (error instanceof CreateOutcomeUnknownError) {
    log.warn("create outcome unknown", { ...context, payout_id: error.payoutId, err: error });
    const location = `/api/payouts/${error.payoutId}/`;
    return problemResponse(
      {
        status: 504,
        code: "create_outcome_unknown",
        title: "Outcome unknown",
        detail: `the database did not confirm whether payout ${error.payoutId} was stored; after ${OUTCOME_SETTLES_S} s, GET ${location} tells: 404 means it was not created and will not be, 200 means it was. Do not repeat the request without an Idempotency-Key until then.`,
        payout_id: error.payoutId,
      },
      { location, "retry-after": String(OUTCOME_SETTLES_S) },
    );
  }
  if (error instanceof KeyedCreateUnsettledError) {
    log.warn("keyed create unsettled", { ...context, outcome: error.outcome, err: error });
    return problemResponse(
      error.outcome === "unknown"
        ? {
            status: 504,
            code: "create_outcome_unknown",
            title: "Outcome unknown",
            detail: `the database did not confirm whether the payout was created; ${RETRY_WITH_KEY}`,
          }
        : {
            status: 503,
            code: "database_unavailable",
            title: "Service unavailable",
            detail: `this request created nothing, but an earlier one with this Idempotency-Key may have; ${RETRY_WITH_KEY}`,
          },
      { "retry-after": "1" },
    );
  }
  if (schemaBehind(error)) {
    log.warn("database schema behind", { ...context, err: error });
    return problemResponse(
      {
        status: 503,
        code: "database_unavailable",
        title: "Service unavailable",
        detail: "the database's schema is not current yet (a migration has not run); try again",
      },
      { "retry-after": "1" },
    );
  }
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
