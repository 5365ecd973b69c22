// The status rules a client meets: payouts are put into each status directly in SQL, then changed
// or deleted through the api. A refused request is a 409 naming the current status, and nothing
// changes.
import { afterAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { STATUSES, type Status } from "../../../src/payouts/model";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { createPayout, expectProblem, moveTo, payoutRow, problemType, query } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

async function payoutIn(status: Status) {
  const { id } = await createPayout(api, { comment: "before" });
  await moveTo(database, id, status);
  // Every write below must move updated_at: start it in the past so that a change shows.
  await database.db.execute(sql`UPDATE payouts SET updated_at = updated_at - interval '1 hour' WHERE id = ${id}`);
  return id;
}

async function expectConflict(
  method: string,
  id: string,
  body: unknown,
  current: Status,
  detail: string,
): Promise<void> {
  const before = await payoutRow(database, id);
  const response = await api.request(method, `/api/payouts/${id}/`, body);
  expectProblem(response, {
    status: 409,
    title: "Status forbids the change",
    code: "status_conflict",
    detail: `the payout is ${current}: ${detail}`,
    current_status: current,
  });
  expect(await payoutRow(database, id)).toEqual(before);
}

const NOT_NEW = STATUSES.filter((s) => s !== "NEW");
const TERMS_DETAIL = "amount, currency and recipient_details change only while it is NEW";
const CANCEL_DETAIL = "only a NEW payout can be cancelled";

describe("cancelling", () => {
  test("a NEW payout can be cancelled", async () => {
    const id = await payoutIn("NEW");
    const before = await payoutRow(database, id);
    const response = await api.request("PATCH", `/api/payouts/${id}/`, { status: "CANCELLED" });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe("CANCELLED");
    const after = await payoutRow(database, id);
    expect(after).toEqual({ ...before, status: "CANCELLED", updated_at: expect.any(String) });
    expect(String(after?.updated_at) > String(before?.updated_at)).toBe(true);
    expect(response.body.updated_at).toBe(after?.updated_at);
  });

  for (const status of NOT_NEW) {
    test(`a ${status} payout cannot be cancelled (409)`, async () =>
      expectConflict("PATCH", await payoutIn(status), { status: "CANCELLED" }, status, CANCEL_DETAIL));
  }

  test("cancelling with a comment in a non-NEW status changes neither", async () =>
    expectConflict(
      "PATCH",
      await payoutIn("PROCESSING"),
      { status: "CANCELLED", comment: "after" },
      "PROCESSING",
      CANCEL_DETAIL,
    ));

  test("a client's cancel racing the worker's claim has exactly one winner", async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => payoutIn("NEW")));
    await Promise.all(
      ids.map(async (id) => {
        const [cancel, claimed] = await Promise.all([
          api.request("PATCH", `/api/payouts/${id}/`, { status: "CANCELLED" }),
          query(
            database,
            sql`UPDATE payouts SET status = 'PROCESSING' WHERE id = ${id} AND status = 'NEW' RETURNING id`,
          ),
        ]);
        const final = (await payoutRow(database, id))?.status;
        if (claimed.length === 1) {
          expect(cancel.status).toBe(409);
          expect(cancel.body.current_status).toBe("PROCESSING");
          expect(final).toBe("PROCESSING");
        } else {
          expect(cancel.status).toBe(200);
          expect(final).toBe("CANCELLED");
        }
      }),
    );
  });
});

describe("changing the terms", () => {
  const changes: Record<string, unknown>[] = [
    { amount: "42.10" },
    { currency: "USD" },
    { recipient_details: "another account" },
  ];

  for (const change of changes) {
    const field = Object.keys(change)[0];
    test(`${field} of a NEW payout can change`, async () => {
      const id = await payoutIn("NEW");
      const before = await payoutRow(database, id);
      const response = await api.request("PATCH", `/api/payouts/${id}/`, change);
      expect(response.status).toBe(200);
      expect(await payoutRow(database, id)).toEqual({ ...before, ...change, updated_at: response.body.updated_at });
    });

    for (const status of NOT_NEW) {
      test(`${field} of a ${status} payout cannot change (409)`, async () =>
        expectConflict("PATCH", await payoutIn(status), change, status, TERMS_DETAIL));
    }
  }

  test("a terms change refused in PROCESSING leaves the comment sent with it unchanged too", async () =>
    expectConflict(
      "PATCH",
      await payoutIn("PROCESSING"),
      { amount: "1.00", comment: "after" },
      "PROCESSING",
      TERMS_DETAIL,
    ));
});

describe("changing the comment", () => {
  for (const status of STATUSES) {
    test(`the comment of a ${status} payout can change`, async () => {
      const id = await payoutIn(status);
      const before = await payoutRow(database, id);
      const response = await api.request("PATCH", `/api/payouts/${id}/`, { comment: "after" });
      expect(response.status).toBe(200);
      const after = await payoutRow(database, id);
      expect(after).toEqual({ ...before, comment: "after", updated_at: expect.any(String) });
      expect(String(after?.updated_at) > String(before?.updated_at)).toBe(true);
      expect(response.body).toMatchObject({ id, status, comment: "after", updated_at: after?.updated_at });
    });
  }
});

describe("deleting", () => {
  for (const status of ["NEW", "CANCELLED", "FAILED"] as const) {
    test(`a ${status} payout can be deleted (204)`, async () => {
      const id = await payoutIn(status);
      const response = await api.request("DELETE", `/api/payouts/${id}/`);
      expect(response.status).toBe(204);
      expect(response.text).toBe("");
      expect(await payoutRow(database, id)).toBeUndefined();
      expect((await api.request("GET", `/api/payouts/${id}/`)).status).toBe(404);
    });
  }

  for (const status of ["PROCESSING", "COMPLETED"] as const) {
    test(`a ${status} payout is kept (409)`, async () =>
      expectConflict(
        "DELETE",
        await payoutIn(status),
        undefined,
        status,
        "only NEW, CANCELLED, FAILED payouts can be deleted",
      ));
  }

  test("a second DELETE of the same payout is a 404", async () => {
    const id = await payoutIn("NEW");
    expect((await api.request("DELETE", `/api/payouts/${id}`)).status).toBe(204);
    const again = await api.request("DELETE", `/api/payouts/${id}`);
    expect(again.status).toBe(404);
  });
});

describe("payouts that do not exist", () => {
  const absent = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";
  const notFound = {
    type: "about:blank",
    title: "Not found",
    status: 404,
    code: "not_found",
    detail: "no such payout",
  };
  const requests: [string, unknown][] = [
    ["GET", undefined],
    ["PATCH", { comment: "x" }],
    ["DELETE", undefined],
  ];

  for (const [method, body] of requests) {
    for (const id of [absent, "not-a-uuid", "12345", "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b1", "%27%20OR%201%3D1"]) {
      test(`${method} of ${id === absent ? "an absent id" : `the non-UUID id ${id}`} is a 404`, async () => {
        const response = await api.request(method, `/api/payouts/${id}/`, body);
        expect(response.status).toBe(404);
        expect(response.headers.get("content-type")).toBe(problemType);
        expect(response.body).toEqual(notFound);
      });
    }
  }

  test("an id in upper case finds the payout", async () => {
    const id = await payoutIn("NEW");
    const response = await api.request("GET", `/api/payouts/${id.toUpperCase()}/`);
    expect(response.status).toBe(200);
    expect(response.body.id).toBe(id);
  });
});
