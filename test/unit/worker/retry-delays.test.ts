import { expect, test } from "bun:test";
import { retryDelayMs } from "../../../src/lib/backoff";
import { retryDelays } from "../../../src/payouts/processing/retry-policy";

test("the delay before attempt n + 1 doubles from RETRY_BASE_DELAY_MS", () => {
  expect([1, 2, 3, 4].map((attempt) => retryDelayMs(1000, attempt, 3_600_000))).toEqual([1000, 2000, 4000, 8000]);
  expect(retryDelayMs(100, 1, 3_600_000)).toBe(100);
});

test("there is one delay per retry: MAX_ATTEMPTS - 1 of them, and at least one", () => {
  expect(retryDelays({ maxAttempts: 5, retryBaseDelayMs: 1000, taskTimeLimitMs: 1 })).toEqual([1000, 2000, 4000, 8000]);
  expect(retryDelays({ maxAttempts: 3, retryBaseDelayMs: 100, taskTimeLimitMs: 1 })).toEqual([100, 200]);
  // A failed handler's message waits out the first delay even when the gateway gets one attempt.
  expect(retryDelays({ maxAttempts: 1, retryBaseDelayMs: 1000, taskTimeLimitMs: 1 })).toEqual([1000]);
});

test("the backoff stops growing at an hour, whatever MAX_ATTEMPTS allows", () => {
  const delays = retryDelays({ maxAttempts: 100, retryBaseDelayMs: 1000, taskTimeLimitMs: 1 });
  expect(delays).toHaveLength(99);
  expect(delays.slice(0, 3)).toEqual([1000, 2000, 4000]);
  expect(Math.max(...delays)).toBe(3_600_000);
  expect(retryDelays({ maxAttempts: 3, retryBaseDelayMs: 3_600_000, taskTimeLimitMs: 1 })).toEqual([
    3_600_000, 3_600_000,
  ]);
});
