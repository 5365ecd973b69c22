// Every /api route the app serves has a scope in the map the bearer plugin reads.
import { afterAll, expect, test } from "bun:test";
import { scopeFor } from "../../../src/keys/auth";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";

const database = testDatabase(1);
afterAll(() => database.close());

test("no /api route is left without a scope", () => {
  const routes = testApi(database).app.routes.filter((route) => route.path.startsWith("/api"));
  // The keys API included: the app mounts it.
  expect(routes.map((route) => route.path)).toContain("/api/keys/:id/roll");
  expect(routes.length).toBeGreaterThan(15);
  for (const { method, path } of routes) {
    const concrete = path.replace(/:[^/]+/g, "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10");
    expect({ method, path, scope: scopeFor(method, concrete) }).toEqual({
      method,
      path,
      scope: expect.any(String),
    });
  }
});
