export type FieldError = { field: string; message: string };

/*
 * What the domain reports when a request cannot be carried out. These know nothing of HTTP:
 * src/http/problem.ts alone decides the status and problem+json body of each. Anything else thrown
 * is a bug.
 */

export class ValidationFailed extends Error {
  constructor(
    readonly errors: FieldError[],
    readonly where: "field" | "header" | "query parameter" = "field",
  ) {
    super(errors.length === 1 ? `1 ${where} is invalid` : `${errors.length} ${where}s are invalid`);
  }
}

export class NotFound extends Error {
  constructor(what = "payout") {
    super(`no such ${what}`);
  }
}

export class StatusConflict extends Error {
  constructor(
    /** The status that forbids the change, as the client reads it (current_status). */
    readonly current: string,
    reason: string,
  ) {
    super(`the payout is ${current}: ${reason}`);
  }
}

export class IdempotencyKeyReused extends Error {
  constructor() {
    super("this Idempotency-Key was first used with a different request body; nothing was created");
  }
}

/** An authenticated caller lacks the scope an action needs (also: granting a scope it does not hold). */
export class MissingScope extends Error {
  constructor(
    readonly scope: string,
    reason = "this request needs it",
  ) {
    super(`the API key lacks the scope ${scope}: ${reason}`);
  }
}

/** An API key's state forbids the change (a key revoking itself, rolling a revoked key). */
export class KeyConflict extends Error {}
