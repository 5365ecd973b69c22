import { type TSchema, Type } from "@sinclair/typebox";
import { isDatabaseUnavailable, KeyedCreateUnsettledError, schemaBehind } from "../db/errors";
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

// A create's 504 is answered only after its deadline and settle time have passed, so its payout is
// already there or never will be (src/payouts/service.ts); the wait gives the database time to be
// reachable again for the GET.
const OUTCOME_SETTLES_S = 5;

/** What a keyed create's client must do when this request could not settle its key. */
export const RETRY_WITH_KEY =
  "retry with the same Idempotency-Key: it returns the payout if an attempt with this key created it, or creates it once. Do not send the request with another key or without one.";

const PROBLEM_TYPE = "application/problem+json";

/**
 * Every `code` a problem+json body of this service can carry, with its status and title: the one
 * catalogue that both the answers (below) and the OpenAPI document's examples read.
 */
export const PROBLEMS = {
  validation_error: { status: 400, title: "Validation failed" },
  invalid_json: { status: 400, title: "Invalid JSON" },
  invalid_host: { status: 400, title: "Bad request" },
  unauthorized: { status: 401, title: "Unauthorized" },
  missing_scope: { status: 403, title: "Missing scope" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  status_conflict: { status: 409, title: "Status forbids the change" },
  key_conflict: { status: 409, title: "The key's state forbids the change" },
  payload_too_large: { status: 413, title: "Payload too large" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  idempotency_key_reused: { status: 422, title: "Idempotency key reused" },
  database_unavailable: { status: 503, title: "Service unavailable" },
  create_outcome_unknown: { status: 504, title: "Outcome unknown" },
  internal_error: { status: 500, title: "Internal server error" },
} as const satisfies Record<string, { status: number; title: string }>;
export type ProblemCode = keyof typeof PROBLEMS;
export const PROBLEM_CODES = Object.keys(PROBLEMS) as ProblemCode[];

/** An RFC 9457 body, less its `type` (always about:blank); `fields` are the extension members. */
export type Problem = {
  status: number;
  code: ProblemCode;
  title: string;
  detail: string;
  errors?: FieldError[];
  [field: string]: unknown;
};

/** The problem of `code`, with the catalogue's status and title. */
export const problem = (code: ProblemCode, detail: string, fields: Record<string, unknown> = {}): Problem => ({
  ...PROBLEMS[code],
  code,
  detail,
  ...fields,
});

/**
 * The problem+json body, for the OpenAPI document. `fields` are the extension members the
 * features add (for example status_conflict's current_status), between detail and errors.
 */
export const problemSchema = (fields: Record<string, TSchema>) =>
  Type.Object(
    {
      type: Type.String({ enum: ["about:blank"] }),
      title: Type.String(),
      status: Type.Integer({ minimum: 400, maximum: 599 }),
      code: Enum(PROBLEM_CODES, { description: "Stable and machine-readable: what went wrong." }),
      detail: Type.String({ description: "For people: what went wrong with this request." }),
      ...fields,
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

/**
 * A create the database could not confirm, as the routes that know the resource report it: the
 * `name` (payout) with this `id` appears at `location` or never will. The body and the log line
 * name it `<name>_id`.
 */
export class OutcomeUnknown extends Error {
  constructor(
    readonly resource: { name: string; id: string; location: string },
    options: ErrorOptions,
  ) {
    super(`the database did not confirm whether ${resource.name} ${resource.id} was stored`, options);
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
export const UNAUTHORIZED: Problem = problem(
  "unauthorized",
  "a valid API key is required: Authorization: Bearer <key>",
);

/** What HTTP says about each error the domain reports. */
export function domainProblem(error: unknown): Problem | undefined {
  if (error instanceof ValidationFailed) return problem("validation_error", error.message, { errors: error.errors });
  if (error instanceof NotFound) return problem("not_found", error.message);
  if (error instanceof StatusConflict)
    return problem("status_conflict", error.message, { current_status: error.current });
  if (error instanceof MissingScope) return problem("missing_scope", error.message, { scope: error.scope });
  if (error instanceof KeyConflict) return problem("key_conflict", error.message);
  if (error instanceof IdempotencyKeyReused) return problem("idempotency_key_reused", error.message);
  return undefined;
}

/** The one place where a thrown value becomes an HTTP response. */
export function toProblem(error: unknown, log: Logger, context: Record<string, unknown>): Response {
  if (error instanceof HttpProblem) return problemResponse(error.problem);
  const domain = domainProblem(error);
  if (domain) return problemResponse(domain);
  if (error instanceof OutcomeUnknown) {
    const { name, id, location } = error.resource;
    const named = { [`${name}_id`]: id };
    log.warn("create outcome unknown", { ...context, ...named, err: error.cause });
    return problemResponse(
      problem(
        "create_outcome_unknown",
        `the database did not confirm whether ${name} ${id} was stored; after ${OUTCOME_SETTLES_S} s, GET ${location} tells: 404 means it was not created and will not be, 200 means it was. Do not repeat the request without an Idempotency-Key until then.`,
        named,
      ),
      { location, "retry-after": String(OUTCOME_SETTLES_S) },
    );
  }
  if (error instanceof KeyedCreateUnsettledError) {
    log.warn("keyed create unsettled", { ...context, outcome: error.outcome, err: error });
    return problemResponse(
      error.outcome === "unknown"
        ? problem(
            "create_outcome_unknown",
            `the database did not confirm whether the payout was created; ${RETRY_WITH_KEY}`,
          )
        : problem(
            "database_unavailable",
            `this request created nothing, but an earlier one with this Idempotency-Key may have; ${RETRY_WITH_KEY}`,
          ),
      { "retry-after": "1" },
    );
  }
  if (schemaBehind(error)) {
    log.warn("database schema behind", { ...context, err: error });
    return problemResponse(
      problem("database_unavailable", "the database's schema is not current yet (a migration has not run); try again"),
      { "retry-after": "1" },
    );
  }
  if (isDatabaseUnavailable(error)) {
    log.warn("database unavailable", { ...context, err: error });
    return problemResponse(problem("database_unavailable", "the database cannot be reached; try again"), {
      "retry-after": "1",
    });
  }
  log.error("unhandled error", { ...context, err: error });
  return problemResponse(problem("internal_error", "an unexpected error occurred"));
}
