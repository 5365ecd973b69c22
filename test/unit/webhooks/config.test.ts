// The webhook settings: the contract's defaults, and a wrong value stops the program naming it.
import { expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../../src/config";

test("the webhook settings default to the contract's values", () => {
  expect(loadConfig({})).toMatchObject({
    webhookTimeoutMs: 10_000,
    webhookMaxAttempts: 8,
    webhookRetryBaseDelayMs: 5000,
    webhookDisableAfter: 10,
    webhookSecretOverlapMs: 86_400_000,
    webhookAllowPrivateNetworks: false,
    webhookBusyRate: 300,
    webhookEndpointConcurrency: 8,
  });
  expect(loadConfig({ WEBHOOK_BUSY_RATE: "0" }).webhookBusyRate).toBe(0);
  expect(loadConfig({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true" }).webhookAllowPrivateNetworks).toBe(true);
});

test.each([
  ["WEBHOOK_TIMEOUT_MS", "0"],
  ["WEBHOOK_MAX_ATTEMPTS", "many"],
  ["WEBHOOK_RETRY_BASE_DELAY_MS", "-5"],
  ["WEBHOOK_DISABLE_AFTER", "0"],
  ["WEBHOOK_SECRET_OVERLAP_MS", "1.5"],
  ["WEBHOOK_ALLOW_PRIVATE_NETWORKS", "yes"],
  ["WEBHOOK_BUSY_RATE", "-1"],
  ["WEBHOOK_ENDPOINT_CONCURRENCY", "0"],
  ["WEBHOOK_ENDPOINT_CONCURRENCY", "33"],
])("%s=%s stops the program with a message naming it", (name, value) => {
  expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name} must be`));
});
