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
    webhookAllowHttp: false,
    webhookSecretKeys: undefined,
    webhookBusyRate: 300,
    webhookEndpointConcurrency: 8,
  });
  expect(loadConfig({ WEBHOOK_BUSY_RATE: "0" }).webhookBusyRate).toBe(0);
  expect(loadConfig({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true" }).webhookAllowPrivateNetworks).toBe(true);
  expect(loadConfig({ WEBHOOK_ALLOW_HTTP: "true" }).webhookAllowHttp).toBe(true);
});

test.each([
  ["WEBHOOK_TIMEOUT_MS", "0"],
  ["WEBHOOK_MAX_ATTEMPTS", "many"],
  ["WEBHOOK_RETRY_BASE_DELAY_MS", "-5"],
  ["WEBHOOK_DISABLE_AFTER", "0"],
  ["WEBHOOK_SECRET_OVERLAP_MS", "1.5"],
  ["WEBHOOK_ALLOW_PRIVATE_NETWORKS", "yes"],
  ["WEBHOOK_ALLOW_HTTP", "1"],
  ["WEBHOOK_BUSY_RATE", "-1"],
  ["WEBHOOK_ENDPOINT_CONCURRENCY", "0"],
  ["WEBHOOK_ENDPOINT_CONCURRENCY", "33"],
])("%s=%s stops the program with a message naming it", (name, value) => {
  expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name} must be`));
});

const KEY_A = Buffer.alloc(32, 1).toString("base64");
const KEY_B = Buffer.alloc(32, 2).toString("base64");

test("WEBHOOK_SECRET_KEYS: id:base64(32 bytes) entries, comma-separated, the first one first", () => {
  expect(loadConfig({ WEBHOOK_SECRET_KEYS: ` k2:${KEY_B} , k1:${KEY_A}` }).webhookSecretKeys).toEqual([
    { id: "k2", key: Buffer.alloc(32, 2) },
    { id: "k1", key: Buffer.alloc(32, 1) },
  ]);
});

test.each([
  ["no id", KEY_A],
  ["a key of 16 bytes", `k1:${Buffer.alloc(16).toString("base64")}`],
  ["a key of 33 bytes", `k1:${Buffer.alloc(33).toString("base64")}`],
  ["an id with a colon", `k:1:${KEY_A}`],
  ["an empty entry", `k1:${KEY_A},`],
  ["the same id twice", `k1:${KEY_A},k1:${KEY_B}`],
])("WEBHOOK_SECRET_KEYS with %s stops the program naming the variable, never echoing a key", (_, value) => {
  expect(() => loadConfig({ WEBHOOK_SECRET_KEYS: value })).toThrow(ConfigError);
  expect(() => loadConfig({ WEBHOOK_SECRET_KEYS: value })).toThrow(/^WEBHOOK_SECRET_KEYS /);
  try {
    loadConfig({ WEBHOOK_SECRET_KEYS: value });
  } catch (err) {
    for (const key of [KEY_A, KEY_B, KEY_A.slice(0, 20)]) expect((err as Error).message).not.toContain(key);
  }
});
