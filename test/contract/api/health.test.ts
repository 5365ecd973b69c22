// /health/live and /health/ready: ready means the database answers and holds every migration of
// this build; the broker is only reported.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { connectPostgres, type Database } from "../../../src/db/client";
import { migratePostgres } from "../../../src/db/migrate";
import { testApi } from "../../kit/api";
import { databaseUrl, testDatabase } from "../../kit/db";

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

describe("ready waits for this build's schema", () => {
  const name = `${new URL(databaseUrl).pathname.slice(1)}_schema`;
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  let fresh: Database;
  beforeAll(async () => {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
    fresh = connectPostgres(url.toString(), 2, "t");
  });
  // Closing a pool and dropping a database can take longer than a hook's default 5 s on a busy machine.
  afterAll(async () => {
    await fresh.close();
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }, 30_000);
  const ready = (db: Database) => testApi(db).request("GET", "/health/ready");
  // The newest migration's record, taken out by one test and put back by the next.
  let newest: { hash: string; created_at: string } | undefined;

  test("an empty database (no migrations table) is 503 schema behind", async () => {
    const response = await ready(fresh);
    expect(response.status).toBe(503);
    expect(response.body).toEqual({ status: "unavailable", database: "schema behind", broker: "up" });
  });

  test("a database missing only this build's newest migration is 503 schema behind", async () => {
    await migratePostgres(url.toString());
    const deleted = await fresh.db.execute(
      sql`DELETE FROM drizzle.__drizzle_migrations
          WHERE created_at = (SELECT max(created_at) FROM drizzle.__drizzle_migrations) RETURNING hash, created_at`,
    );
    newest = (deleted as unknown as (typeof newest)[])[0];
    expect(newest).toBeDefined();
    const response = await ready(fresh);
    expect(response.status).toBe(503);
    expect(response.body).toMatchObject({ database: "schema behind" });
  });

  test("once every migration is there it is 200, and stays so without asking again", async () => {
    await fresh.db.execute(
      sql`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES (${newest?.hash}, ${newest?.created_at})`,
    );
    const { request } = testApi(fresh);
    const first = await request("GET", "/health/ready");
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ status: "ready", database: "up", broker: "up" });
    // Migrations are never undone: the answer is cached, so a later change to the table is not seen.
    await fresh.db.execute(sql`DELETE FROM drizzle.__drizzle_migrations`);
    expect((await request("GET", "/health/ready")).status).toBe(200);
    expect((await ready(fresh)).status).toBe(503);
  });
});
