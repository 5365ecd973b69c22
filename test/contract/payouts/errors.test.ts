// The domain reports what went wrong in its own terms; HTTP statuses are the api's business
// (src/http/problem.ts maps them, test/contract/api checks the responses).
import { afterAll, expect, test } from "bun:test";
import { loadConfig } from "../../../src/config";
import { IdempotencyKeyReused, NotFound, StatusConflict } from "../../../src/errors";
import { systemClock } from "../../../src/lib/clock";
import { payoutService } from "../../../src/payouts/service";
import { testDatabase } from "../../kit/db";
import { moveTo } from "../../kit/fixtures";
import { quiet as log } from "../../kit/log";

const database = testDatabase();
afterAll(() => database.close());
const service = payoutService(
  { db: database.db, availability: database.availability, clock: systemClock, log },
  { idempotencyKeyTtlMs: loadConfig({}).idempotencyKeyTtlMs, createDeadlineMs: loadConfig({}).createDeadlineMs },
);
const input = { amount: "10.00", currency: "RUB" as const, recipient_details: "x", comment: "" };
/** The caller: the domain takes its API key's id from the api (none needs to exist here). */
const apiKeyId = Bun.randomUUIDv7();

/** The error a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

test("reading an absent payout is NotFound, which carries no HTTP status", async () => {
  const error = await rejection(service.get("0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10"));
  expect(error).toBeInstanceOf(NotFound);
  expect(error).not.toHaveProperty("status");
});

test("cancelling a COMPLETED payout is a StatusConflict naming the current status", async () => {
  const created = await service.create(input, apiKeyId);
  if (created.replayed) throw new Error("not a replay");
  await moveTo(database, created.payout.id, "COMPLETED");
  const error = await rejection(service.update(created.payout.id, { status: "CANCELLED" }, apiKeyId));
  expect(error).toBeInstanceOf(StatusConflict);
  expect(error).toMatchObject({
    current: "COMPLETED",
    message: "the payout is COMPLETED: only a NEW payout can be cancelled",
  });
  expect(error).not.toHaveProperty("status");
});

test("an idempotency key reused with another body is IdempotencyKeyReused", async () => {
  const key = `domain-${process.pid}-${Date.now()}`;
  await service.create(input, apiKeyId, key);
  const error = await rejection(service.create({ ...input, amount: "11.00" }, apiKeyId, key));
  expect(error).toBeInstanceOf(IdempotencyKeyReused);
  expect(error).not.toHaveProperty("status");
});
