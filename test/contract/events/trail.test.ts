// The audit trail: PostgreSQL appends one event per visible change of a payout, whoever writes it,
// in the change's own transaction; the events' data is the payout exactly as the api shows it.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { type SQL, sql } from "drizzle-orm";
import { testApi } from "../../kit/api";
import { resetDatabase, testDatabase } from "../../kit/db";
import { createPayout, expectProblem, expectValidationProblem, query } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);
beforeEach(() => resetDatabase(database));

type Event = { id: string; type: string; payout_id: string; attempt: number | null; created_at: string; data: unknown };

async function history(id: string): Promise<Event[]> {
  const response = await api.request("GET", `/api/payouts/${id}/events/`);
  expect(response.status).toBe(200);
  expect(response.body.next_cursor).toBeNull();
  return response.body.results;
}

/** Runs SQL as any client of the database could, outside the service. */
const run = async (statement: SQL) => {
  await database.db.execute(statement);
};

/** The payout's current api JSON, byte for byte. */
async function apiText(id: string): Promise<string> {
  const response = await api.request("GET", `/api/payouts/${id}/`);
  expect(response.status).toBe(200);
  return response.text;
}

describe("what each change appends", () => {
  test("a payout's whole life, written by the api and by plain SQL, is its history, oldest first", async () => {
    const created = await createPayout(api, { comment: "first" });
    const id = created.id;
    const snapshots: string[] = [await apiText(id)];
    await api.request("PATCH", `/api/payouts/${id}/`, { comment: "second", amount: "20.5" });
    snapshots.push(await apiText(id));
    // A worker's claim, a retry's claim (a takeover bumps attempts, the status stays) and the payment.
    await run(
      sql`UPDATE payouts SET status = 'PROCESSING', attempts = attempts + 1, updated_at = now() WHERE id = ${id}`,
    );
    snapshots.push(await apiText(id));
    await run(
      sql`UPDATE payouts SET status = 'PROCESSING', attempts = attempts + 1, updated_at = now() WHERE id = ${id}`,
    );
    snapshots.push(await apiText(id));
    await run(sql`UPDATE payouts SET status = 'COMPLETED', processed_at = now(), updated_at = now() WHERE id = ${id}`);
    snapshots.push(await apiText(id));

    const events = await history(id);
    expect(events.map((e) => [e.type, e.attempt])).toEqual([
      ["payout.created", null],
      ["payout.updated", null],
      ["payout.processing", 1],
      ["payout.processing", 2],
      ["payout.completed", 2],
    ]);
    // The trigger's JSON is the api's JSON for the same row: same fields, same order, same text.
    expect(events.map((e) => JSON.stringify(e.data))).toEqual(snapshots);
    expect(JSON.parse(snapshots[0] as string)).toEqual(created);
    for (const e of events) {
      expect(e.payout_id).toBe(id);
      expect(e.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    // Ids are UUID v7 and sort as the events happened.
    expect(events.map((e) => e.id).every((v) => /^[0-9a-f]{8}-[0-9a-f]{4}-7/.test(v))).toBe(true);
    expect(events.map((e) => e.id)).toEqual(events.map((e) => e.id).sort());
    expect(events.map((e) => e.created_at)).toEqual(events.map((e) => e.created_at).sort());
  });

  test("a payout inserted with plain SQL has its payout.created event", async () => {
    const id = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";
    await run(sql`INSERT INTO payouts (id, amount, currency, recipient_details) VALUES (${id}, 7, 'EUR', 'DE89 3704')`);
    const listed = await api.request("GET", `/api/events/?payout_id=${id}`);
    expect(listed.status).toBe(200);
    expect(listed.body.results.map((e: Event) => [e.type, e.data])).toEqual([
      ["payout.created", JSON.parse(await apiText(id))],
    ]);
  });

  test("a failed payout's event carries its last attempt and failure_reason", async () => {
    const { id } = await createPayout(api);
    await run(sql`UPDATE payouts SET status = 'PROCESSING', attempts = 3 WHERE id = ${id}`);
    await run(
      sql`UPDATE payouts SET status = 'FAILED', failure_reason = 'gateway refused', processed_at = now() WHERE id = ${id}`,
    );
    const last = (await history(id)).at(-1);
    expect(last?.type).toBe("payout.failed");
    expect(last?.attempt).toBe(3);
    expect(JSON.stringify(last?.data)).toBe(await apiText(id));
  });

  test("a cancel with other fields is one payout.cancelled event holding them all", async () => {
    const { id } = await createPayout(api);
    const patched = await api.request("PATCH", `/api/payouts/${id}/`, {
      status: "CANCELLED",
      comment: "no longer due",
    });
    expect(patched.status).toBe(200);
    const events = await history(id);
    expect(events.map((e) => e.type)).toEqual(["payout.created", "payout.cancelled"]);
    expect(events[1]?.data).toEqual(patched.body);
  });

  test("a deleted payout appends payout.deleted with the payout as it was, and its history stays readable", async () => {
    const { id } = await createPayout(api);
    const before = await apiText(id);
    expect((await api.request("DELETE", `/api/payouts/${id}/`)).status).toBe(204);
    expect((await api.request("GET", `/api/payouts/${id}/`)).status).toBe(404);
    const events = await history(id);
    expect(events.map((e) => e.type)).toEqual(["payout.created", "payout.deleted"]);
    expect(JSON.stringify(events[1]?.data)).toBe(before);
  });

  test("a PATCH that changes nothing, and writes only the service's own columns, append nothing", async () => {
    const { id } = await createPayout(api, { comment: "same", amount: "10.50" });
    const same = await api.request("PATCH", `/api/payouts/${id}/`, { comment: "same", amount: 10.5, currency: "RUB" });
    expect(same.status).toBe(200);
    await run(sql`UPDATE payouts SET published_at = now(), updated_at = now() - interval '1 hour' WHERE id = ${id}`);
    expect((await history(id)).map((e) => e.type)).toEqual(["payout.created"]);
  });

  test("a change that is refused or rolled back appends nothing", async () => {
    const { id } = await createPayout(api);
    await run(sql`UPDATE payouts SET status = 'CANCELLED' WHERE id = ${id}`);
    const refused = await api.request("PATCH", `/api/payouts/${id}/`, { amount: "99.00" });
    expect(refused.status).toBe(409);
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`UPDATE payouts SET comment = 'rolled back' WHERE id = ${id}`);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect((await history(id)).map((e) => e.type)).toEqual(["payout.created", "payout.cancelled"]);
  });

  test("a batch of creates appends one event per payout", async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, () => createPayout(api).then((p) => p.id)));
    const rows = await query<{ payout_id: string }>(
      database,
      sql`SELECT payout_id FROM payout_events WHERE type = 'payout.created'`,
    );
    expect(rows.map((r) => r.payout_id).sort()).toEqual([...ids].sort());
  });
});

describe("append-only", () => {
  test("events cannot be updated or deleted, by anyone", async () => {
    await createPayout(api);
    await expect(run(sql`UPDATE payout_events SET attempt = 9`)).rejects.toMatchObject({
      cause: { code: "42501", message: "payout_events is append-only: UPDATE refused" },
    });
    await expect(run(sql`DELETE FROM payout_events`)).rejects.toMatchObject({
      cause: { code: "42501", message: "payout_events is append-only: DELETE refused" },
    });
    const [row] = await query<{ n: number }>(database, sql`SELECT count(*)::int AS n FROM payout_events`);
    expect(row?.n).toBe(1);
  });
});

describe("GET /api/payouts/{id}/events/", () => {
  test("an id that never was a payout is a 404, as is one that is not a UUID", async () => {
    const notFound = { status: 404, title: "Not found", code: "not_found", detail: "no such payout" };
    expectProblem(await api.request("GET", "/api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/events/"), notFound);
    expectProblem(await api.request("GET", "/api/payouts/nope/events/"), notFound);
  });

  test("a payout stored before the trail existed has an empty history, not a 404", async () => {
    const { id } = await createPayout(api);
    await run(sql`TRUNCATE payout_events`);
    const response = await api.request("GET", `/api/payouts/${id}/events`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ results: [], next_cursor: null });
  });

  test("pages follow the cursor, oldest first, without losing or repeating an event", async () => {
    const { id } = await createPayout(api);
    for (let i = 0; i < 6; i++) await api.request("PATCH", `/api/payouts/${id}/`, { comment: `edit ${i}` });
    const seen: Event[] = [];
    let cursor: string | null = null;
    do {
      const path: string = `/api/payouts/${id}/events/?limit=3${cursor ? `&cursor=${cursor}` : ""}`;
      const response = await api.request("GET", path);
      expect(response.status).toBe(200);
      seen.push(...response.body.results);
      cursor = response.body.next_cursor;
    } while (cursor);
    expect(seen.map((e) => (e.data as { comment: string }).comment)).toEqual([
      "",
      ...Array.from({ length: 6 }, (_, i) => `edit ${i}`),
    ]);
  });

  test("bad query parameters are a 400 naming each", async () => {
    const { id } = await createPayout(api);
    expectValidationProblem(
      await api.request("GET", `/api/payouts/${id}/events/?limit=0&cursor=zzz&type=payout.created`),
      [
        { field: "limit", message: "must be a whole number from 1 to 200" },
        { field: "cursor", message: "is not a cursor this service issued" },
        { field: "type", message: "is not a known query parameter" },
      ],
      "query parameter",
    );
  });
});

describe("GET /api/events/", () => {
  async function seed() {
    const a = await createPayout(api);
    const b = await createPayout(api);
    await api.request("PATCH", `/api/payouts/${a.id}/`, { status: "CANCELLED" });
    await api.request("PATCH", `/api/payouts/${b.id}/`, { comment: "x" });
    return { a: a.id, b: b.id };
  }

  test("lists every event newest first, across pages", async () => {
    const { a, b } = await seed();
    const all: Event[] = [];
    let cursor: string | null = null;
    do {
      const response = await api.request("GET", `/api/events/?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(response.status).toBe(200);
      all.push(...response.body.results);
      cursor = response.body.next_cursor;
    } while (cursor);
    expect(all.map((e) => [e.type, e.payout_id])).toEqual([
      ["payout.updated", b],
      ["payout.cancelled", a],
      ["payout.created", b],
      ["payout.created", a],
    ]);
  });

  test("a cursor carries its filters: followed alone it continues the same list", async () => {
    const { a } = await seed();
    const first = await api.request("GET", `/api/events/?payout_id=${a}&limit=1`);
    expect(first.body.results.map((e: Event) => e.type)).toEqual(["payout.cancelled"]);
    const next = await api.request("GET", `/api/events/?cursor=${first.body.next_cursor}`);
    expect(next.body).toMatchObject({ results: [{ type: "payout.created", payout_id: a }], next_cursor: null });
    const mixed = await api.request("GET", `/api/events/?cursor=${first.body.next_cursor}&type=payout.created`);
    expect(mixed.status).toBe(400);
  });

  test("filters by type, payout and a created_at window", async () => {
    const { a, b } = await seed();
    const types = async (q: string) =>
      ((await api.request("GET", `/api/events/?${q}`)).body.results as Event[]).map((e) => `${e.type} ${e.payout_id}`);
    expect(await types("type=payout.created")).toEqual([`payout.created ${b}`, `payout.created ${a}`]);
    expect(await types(`payout_id=${a.toUpperCase()}`)).toEqual([`payout.cancelled ${a}`, `payout.created ${a}`]);
    expect(await types(`type=payout.cancelled&payout_id=${b}`)).toEqual([]);

    const events = (await api.request("GET", "/api/events/")).body.results as Event[];
    const cancelled = events.find((e) => e.type === "payout.cancelled") as Event;
    const inWindow = events.filter((e) => e.created_at === cancelled.created_at).map((e) => `${e.type} ${e.payout_id}`);
    const after = new Date(Date.parse(cancelled.created_at) + 1).toISOString();
    expect(await types(`created_after=${cancelled.created_at}&created_before=${after}`)).toEqual(inWindow);
    expect(await types(`created_before=${cancelled.created_at}&type=payout.cancelled`)).toEqual([]);
    expect(await types(`created_after=${after}&type=payout.created`)).toEqual([]);
  });

  test("bad query parameters are a 400 naming each", async () => {
    expectValidationProblem(
      await api.request(
        "GET",
        "/api/events/?type=payout.paid&payout_id=42&created_after=yesterday&status=NEW&limit=201",
      ),
      [
        { field: "type", message: expect.stringMatching(/^must be one of payout.created, /) as unknown as string },
        { field: "payout_id", message: "must be a UUID" },
        { field: "created_after", message: "must be an RFC 3339 timestamp, like 2026-11-26T10:15:30Z" },
        { field: "status", message: "is not a known query parameter" },
        { field: "limit", message: "must be a whole number from 1 to 200" },
      ],
      "query parameter",
    );
  });
});
