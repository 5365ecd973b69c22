import { afterAll, expect, test } from "bun:test";
import { testApi } from "../kit/api";
import { testDatabase } from "../kit/db";

const database = testDatabase();
afterAll(() => database.close());

test("a created payout can be read back", async () => {
  const { request, handedOff } = testApi(database);
  const created = await request("POST", "/api/payouts/", { amount: "1.5", currency: "USD", recipient_details: "x" });
  expect(created.status).toBe(201);
  expect(handedOff).toEqual([created.body.id]);
  const read = await request("GET", `/api/payouts/${created.body.id}`);
  expect(read.body).toEqual(created.body);
});
