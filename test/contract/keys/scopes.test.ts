// Every /api route the app and the keys feature serve has a scope in the map the bearer plugin reads.
import { afterAll, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { scopeFor } from "../../../src/keys/auth";
import { keyRoutes } from "../../../src/keys/routes";
import { keyService } from "../../../src/keys/service";
import { systemClock } from "../../../src/lib/clock";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { quiet as log } from "../../kit/log";

const database = testDatabase(1);
afterAll(() => database.close());

test("no /api route is left without a scope", () => {
  const keys = new Elysia().use(keyRoutes(keyService({ db: database.db, clock: systemClock, log }, { cacheTtlMs: 0 })));
  const routes = [...testApi(database).app.routes, ...keys.routes].filter((route) => route.path.startsWith("/api"));
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
