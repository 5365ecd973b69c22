// The scope each /api route needs, and the paths that need no key.
import { describe, expect, test } from "bun:test";
import { isOpenPath, scopeFor } from "../../../src/keys/auth";

const ID = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";

describe("scopeFor", () => {
  test.each([
    ["GET", "/api/payouts/", "payouts:read"],
    ["GET", "/api/payouts", "payouts:read"],
    ["HEAD", "/api/payouts/", "payouts:read"],
    ["GET", `/api/payouts/${ID}/`, "payouts:read"],
    ["GET", `/api/payouts/${ID}`, "payouts:read"],
    ["POST", "/api/payouts/", "payouts:write"],
    ["PATCH", `/api/payouts/${ID}/`, "payouts:write"],
    ["DELETE", `/api/payouts/${ID}/`, "payouts:write"],
    ["PUT", "/api/payouts/", "payouts:write"],
    ["GET", `/api/payouts/${ID}/events/`, "events:read"],
    ["GET", `/api/payouts/${ID}/events`, "events:read"],
    ["GET", "/api/events/", "events:read"],
    ["GET", "/api/events", "events:read"],
    ["GET", "/api/webhook-endpoints/", "webhooks:manage"],
    ["POST", "/api/webhook-endpoints/", "webhooks:manage"],
    ["GET", `/api/webhook-endpoints/${ID}/`, "webhooks:manage"],
    ["PATCH", `/api/webhook-endpoints/${ID}/`, "webhooks:manage"],
    ["DELETE", `/api/webhook-endpoints/${ID}/`, "webhooks:manage"],
    ["POST", `/api/webhook-endpoints/${ID}/rotate-secret/`, "webhooks:manage"],
    ["GET", `/api/webhook-endpoints/${ID}/deliveries/`, "webhooks:manage"],
    ["POST", `/api/webhook-endpoints/${ID}/deliveries/${ID}/retry/`, "webhooks:manage"],
    ["GET", "/api/keys/", "keys:manage"],
    ["POST", "/api/keys/", "keys:manage"],
    ["GET", `/api/keys/${ID}/`, "keys:manage"],
    ["POST", `/api/keys/${ID}/roll`, "keys:manage"],
    ["DELETE", `/api/keys/${ID}/`, "keys:manage"],
  ])("%s %s needs %s", (method, path, scope) => {
    expect(scopeFor(method, path)).toBe(scope as ReturnType<typeof scopeFor>);
  });

  test.each([
    ["GET", "/api/"],
    ["GET", "/api/unknown/"],
    ["GET", `/api/payouts/${ID}/other/`],
    ["GET", "/api/payoutsX/"],
    ["GET", "/api/keysX/"],
  ])("%s %s is no route: no scope (a 404 once authenticated)", (method, path) => {
    expect(scopeFor(method, path)).toBeUndefined();
  });

  test("payouts:write alone reads nothing: each read of payouts needs payouts:read", () => {
    for (const path of ["/api/payouts/", `/api/payouts/${ID}/`]) {
      expect(scopeFor("GET", path)).not.toBe("payouts:write");
    }
  });
});

describe("isOpenPath", () => {
  test.each([
    "/health/live",
    "/health/ready",
    "/swagger",
    "/swagger/",
    "/swagger/json",
    "/swagger/assets/x.css",
    "/metrics",
    "/metrics/",
  ])("%s needs no key", (path) => {
    expect(isOpenPath(path)).toBe(true);
  });

  test.each(["/api/payouts/", "/", "/healthz", "/swaggerx", "/metricsx", "/metrics/x", "/api/health/live", "/health"])(
    "%s needs a key",
    (path) => {
      expect(isOpenPath(path)).toBe(false);
    },
  );
});
