import { expect, test } from "bun:test";
import { pathOf } from "../../../src/http/request-log";

test("the logged path is the URL's path without its query, also for a relative URL (an invalid Host)", () => {
  expect(pathOf("http://payouts.test/api/payouts/?status=NEW")).toBe("/api/payouts/");
  expect(pathOf("http://payouts.test:8000/health/live")).toBe("/health/live");
  expect(pathOf("/api/payouts/?recipient=x")).toBe("/api/payouts/");
});
