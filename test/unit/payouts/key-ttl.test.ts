import { expect, test } from "bun:test";
import { loadConfig } from "../../../src/config";

test("IDEMPOTENCY_KEY_TTL_MS defaults to 7 days and refuses less than Stripe's 24 hours", () => {
  expect(loadConfig({}).idempotencyKeyTtlMs).toBe(7 * 86_400_000);
  expect(loadConfig({ IDEMPOTENCY_KEY_TTL_MS: "86400000" }).idempotencyKeyTtlMs).toBe(86_400_000);
  expect(() => loadConfig({ IDEMPOTENCY_KEY_TTL_MS: "86399999" })).toThrow(
    'IDEMPOTENCY_KEY_TTL_MS must be a whole number from 86400000 to 31622400000, got "86399999"',
  );
});
