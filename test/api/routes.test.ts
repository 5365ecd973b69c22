// The endpoints' shape: trailing slash optional, Location on 201, and the hand-off to processing
// after the commit, exactly once.
import { afterAll, describe, expect, test } from "bun:test";
import { countRows, createPayout, payoutRow, validBody } from "../fixtures";
import { testApi, testDatabase } from "../helpers";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

describe("trailing slash", () => {
  for (const path of ["/api/payouts", "/api/payouts/"]) {
    test(`POST ${path} creates a payout`, async () => {
      expect((await api.request("POST", path, validBody)).status).toBe(201);
    });

    test(`GET ${path} lists payouts`, async () => {
      const response = await api.request("GET", `${path}?limit=1`);
      expect(response.status).toBe(200);
      expect(response.body.results).toHaveLength(1);
    });
  }

  for (const slash of ["", "/"]) {
    const label = slash ? "with" : "without";
    test(`GET /api/payouts/{id} ${label} the slash reads the payout`, async () => {
      const created = await createPayout(api);
      const response = await api.request("GET", `/api/payouts/${created.id}${slash}`);
      expect(response.status).toBe(200);
      expect(response.body).toEqual(created);
    });

    test(`PATCH /api/payouts/{id} ${label} the slash changes the payout`, async () => {
      const { id } = await createPayout(api);
      const response = await api.request("PATCH", `/api/payouts/${id}${slash}`, { comment: "changed" });
      expect(response.status).toBe(200);
      expect((await payoutRow(database, id))?.comment).toBe("changed");
    });

    test(`DELETE /api/payouts/{id} ${label} the slash deletes the payout`, async () => {
      const { id } = await createPayout(api);
      expect((await api.request("DELETE", `/api/payouts/${id}${slash}`)).status).toBe(204);
      expect(await payoutRow(database, id)).toBeUndefined();
    });

    test(`/swagger/json ${label} the slash serves the OpenAPI document`, async () => {
      const response = await api.request("GET", `/swagger/json${slash}`);
      expect(response.status).toBe(200);
      expect(response.body.openapi).toMatch(/^3\./);
    });

    test(`/swagger ${label} the slash serves Swagger UI`, async () => {
      const response = await api.request("GET", `/swagger${slash}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    });

    for (const probe of ["live", "ready"]) {
      test(`/health/${probe} ${label} the slash answers 200`, async () => {
        expect((await api.request("GET", `/health/${probe}${slash}`)).status).toBe(200);
      });
    }
  }
});

describe("create", () => {
  test("201 carries a Location header that reads the payout back", async () => {
    const created = await api.request("POST", "/api/payouts/", validBody);
    expect(created.status).toBe(201);
    expect(created.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(created.headers.get("location")).toBe(`/api/payouts/${created.body.id}/`);
    const read = await api.request("GET", created.headers.get("location") as string);
    expect(read.body).toEqual(created.body);
  });

  test("the response is exactly what the database holds", async () => {
    const created = await createPayout(api, { amount: 10.5, comment: "x" });
    const row = await payoutRow(database, created.id);
    expect(created as Record<string, unknown>).toEqual({
      id: row?.id,
      amount: row?.amount,
      currency: row?.currency,
      recipient_details: row?.recipient_details,
      comment: row?.comment,
      status: row?.status,
      failure_reason: row?.failure_reason,
      created_at: row?.created_at,
      updated_at: row?.updated_at,
      processed_at: row?.processed_at,
    });
  });

  test("ids are UUID v7 and grow with time", async () => {
    const first = await createPayout(api);
    const second = await createPayout(api);
    expect(second.id > first.id).toBe(true);
  });

  test("the id is handed to processing once, only after its row is committed", async () => {
    // psql is another session and runs synchronously: it sees the row only if the api's
    // transaction has committed by the time the id is handed off.
    const seenCommitted: boolean[] = [];
    const watched = testApi(database, {
      onCreated: (id) => {
        const psql = Bun.spawnSync([
          "psql",
          process.env.DATABASE_URL as string,
          "-tAc",
          `SELECT count(*) FROM payouts WHERE id = '${id}'`,
        ]);
        seenCommitted.push(psql.stdout.toString().trim() === "1");
      },
    });
    const plain = await watched.request("POST", "/api/payouts/", validBody);
    const keyed = await watched.request("POST", "/api/payouts/", validBody, {
      "idempotency-key": `commit-${Date.now()}`,
    });
    expect(watched.handedOff).toEqual([plain.body.id, keyed.body.id]);
    expect(seenCommitted).toEqual([true, true]);
  });

  test("a refused create hands nothing to processing", async () => {
    const before = await countRows(database, "payouts");
    const refused = testApi(database);
    await refused.request("POST", "/api/payouts/", { ...validBody, amount: "0" });
    await refused.request("POST", "/api/payouts/", "{", {});
    await refused.request("POST", "/api/payouts/", validBody, { "idempotency-key": "" });
    expect(refused.handedOff).toEqual([]);
    expect(await countRows(database, "payouts")).toBe(before);
  });
});
