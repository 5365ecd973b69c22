import type { Status } from "./payouts/model";
import type { FieldError } from "./payouts/validation";

/**
 * An error a client can cause: an expected value with an HTTP status and a stable code, turned
 * into application/problem+json by the api's one error handler. Anything else thrown is a bug.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail?: string,
    readonly extra: { errors?: FieldError[]; current_status?: Status } = {},
  ) {
    super(detail ?? title);
  }
}

export const validationFailed = (errors: FieldError[], where = "field") =>
  new AppError(
    400,
    "validation_error",
    "Validation failed",
    errors.length === 1 ? `1 ${where} is invalid` : `${errors.length} ${where}s are invalid`,
    { errors },
  );

export const notFound = (what = "payout") => new AppError(404, "not_found", "Not found", `no such ${what}`);

export const statusConflict = (current: Status, detail: string) =>
  new AppError(409, "status_conflict", "Status forbids the change", `the payout is ${current}: ${detail}`, {
    current_status: current,
  });
