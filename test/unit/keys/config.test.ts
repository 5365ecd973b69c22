// API_KEY_CACHE_TTL_MS: the bound within which a revocation or expiry reaches every api replica.
import { expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../../src/config";
import { keyServiceOptions } from "../../../src/roles/options";

test("API_KEY_CACHE_TTL_MS defaults to 2000, accepts 0 (no cache) to 10000, and is the key service's cache TTL", () => {
  expect(loadConfig({}).apiKeyCacheTtlMs).toBe(2000);
  expect(loadConfig({ API_KEY_CACHE_TTL_MS: "0" }).apiKeyCacheTtlMs).toBe(0);
  expect(loadConfig({ API_KEY_CACHE_TTL_MS: "10000" }).apiKeyCacheTtlMs).toBe(10_000);
  expect(keyServiceOptions(loadConfig({ API_KEY_CACHE_TTL_MS: "500" })).cacheTtlMs).toBe(500);
});

for (const wrong of ["10001", "1.5", "2s", "-1"]) {
  test(`API_KEY_CACHE_TTL_MS=${wrong} stops the program with a message naming it`, () => {
    expect(() => loadConfig({ API_KEY_CACHE_TTL_MS: wrong })).toThrow(
      new ConfigError(`API_KEY_CACHE_TTL_MS must be a whole number from 0 to 10000, got "${wrong}"`),
    );
  });
}
