// /health/live and /health/ready: ready means the database answers; the broker is only reported.
import { afterAll, expect, test } from "bun:test";
import { connectPostgres } from "../../src/db/client";
import { testApi, testDatabase } from "../helpers";

const database = testDatabase();
afterAll(() => database.close());

test("live answers 200 while the process runs", async () => {
  const response = await testApi(database).request("GET", "/health/live");
  expect(response.status).toBe(200);
  expect(response.body).toEqual({ status: "ok" });
});

test("ready answers 200 with the database up and the broker up", async () => {
  const response = await testApi(database, { brokerConnected: true }).request("GET", "/health/ready");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  expect(response.body).toEqual({ status: "ready", database: "up", broker: "up" });
});

test("ready stays 200 with the broker down, and reports it", async () => {
  const response = await testApi(database, { brokerConnected: false }).request("GET", "/health/ready");
  expect(response.status).toBe(200);
  expect(response.body).toEqual({ status: "ready", database: "up", broker: "down" });
});

test(
  "ready answers 503 with a JSON body at once when the database is unreachable",
  async () => {
    const down = connectPostgres("postgres://postgres@127.0.0.1:1/none", 1, "t");
    try {
      const response = await testApi(down, { brokerConnected: true }).request("GET", "/health/ready/");
      expect(response.status).toBe(503);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      expect(response.body).toEqual({ status: "unavailable", database: "down", broker: "up" });
      const live = await testApi(down).request("GET", "/health/live");
      expect(live.status).toBe(200);
    } finally {
      await down.close();
    }
  },
  { timeout: 10_000 },
);
