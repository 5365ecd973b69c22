// GET /api/payouts/: newest first, keyset pagination over many pages, filters, and the query
// parameters that are refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { payouts } from "../../../src/db/schema";
import { CURRENCIES, STATUSES } from "../../../src/payouts/model";
import { testApi } from "../../kit/api";
import { resetDatabase, testDatabase } from "../../kit/db";
import { expectValidationProblem } from "../../kit/fixtures";

const database = testDatabase();
const api = testApi(database);
afterAll(() => database.close());

const BASE = Date.parse("2026-11-26T10:00:00.000Z");
const COUNT = 230;

/** A deterministic, scrambled UUID per row, so that ties on created_at are broken by id order. */
const scrambledId = (i: number) => {
  const hex = new Bun.CryptoHasher("md5").update(`payout ${i}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

type Seeded = { id: string; status: string; currency: string; createdAt: string };
const seeded: Seeded[] = [];

beforeAll(async () => {
  await resetDatabase(database);
  const rows = Array.from({ length: COUNT }, (_, i) => {
    const status = STATUSES[i % STATUSES.length] as (typeof STATUSES)[number];
    const final = status === "COMPLETED" || status === "FAILED";
    // Three payouts per millisecond: pages must split ties without losing or repeating one.
    const createdAt = new Date(BASE + Math.floor(i / 3));
    return {
      id: scrambledId(i),
      amount: `${i + 1}.00`,
      currency: CURRENCIES[Math.floor(i / 2) % CURRENCIES.length] as (typeof CURRENCIES)[number],
      recipientDetails: `recipient ${i}`,
      status,
      failureReason: status === "FAILED" ? "gateway refused" : null,
      processedAt: final ? createdAt : null,
      createdAt,
      updatedAt: createdAt,
    };
  });
  await database.db.insert(payouts).values(rows);
  for (const r of rows) {
    seeded.push({ id: r.id, status: r.status, currency: r.currency, createdAt: r.createdAt.toISOString() });
  }
});

/** Newest first, ties broken by the id, descending (PostgreSQL orders UUIDs as their hex text). */
const newestFirst = (rows: Seeded[]) =>
  [...rows].sort((a, b) =>
    a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0,
  );

/**
 * Follows next_cursor from the first page to the last; returns every page. With `cursorAlone`, the
 * pages after the first are asked for with `?cursor=` only, as the README's example does.
 */
async function allPages(query: Record<string, string>, { cursorAlone = false } = {}) {
  const pages: { results: { id: string }[]; next_cursor: string | null }[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams(cursor ? (cursorAlone ? { cursor } : { ...query, cursor }) : query);
    const response = await api.request("GET", `/api/payouts/?${params}`);
    expect(response.status).toBe(200);
    pages.push(response.body);
    cursor = response.body.next_cursor;
  } while (cursor !== null && pages.length <= COUNT);
  return pages;
}

const at = (ms: number) => new Date(BASE + ms).toISOString();

describe("pagination", () => {
  const filters: [string, Record<string, string>, (r: Seeded) => boolean][] = [
    ["no filter", {}, () => true],
    ["status", { status: "FAILED" }, (r) => r.status === "FAILED"],
    ["currency", { currency: "EUR" }, (r) => r.currency === "EUR"],
    ["created_after (inclusive)", { created_after: at(20) }, (r) => r.createdAt >= at(20)],
    ["created_before (exclusive)", { created_before: at(50) }, (r) => r.createdAt < at(50)],
    [
      "status, currency, created_after and created_before combined",
      { status: "NEW", currency: "USD", created_after: at(5), created_before: at(70) },
      (r) => r.status === "NEW" && r.currency === "USD" && r.createdAt >= at(5) && r.createdAt < at(70),
    ],
    [
      "every status except one, by currency",
      { status: "CANCELLED", currency: "RUB" },
      (r) => r.status === "CANCELLED" && r.currency === "RUB",
    ],
  ];

  for (const [name, query, keep] of filters) {
    for (const cursorAlone of [false, true]) {
      const how = cursorAlone ? "following next_cursor alone" : "repeating the filters";
      test(`pages of 7 with ${name}, ${how}, return every matching payout once, newest first`, async () => {
        const expected = newestFirst(seeded.filter(keep)).map((r) => r.id);
        expect(expected.length).toBeGreaterThan(7);
        const pages = await allPages({ ...query, limit: "7" }, { cursorAlone });
        expect(pages.flatMap((p) => p.results.map((r) => r.id))).toEqual(expected);
        expect(pages.length).toBe(Math.ceil(expected.length / 7));
        for (const page of pages.slice(0, -1)) expect(page.results).toHaveLength(7);
        expect(pages.at(-1)?.next_cursor).toBeNull();
      });
    }
  }

  test("a last page that is exactly full has next_cursor null", async () => {
    const pages = await allPages({ limit: "10" });
    expect(pages).toHaveLength(COUNT / 10);
    expect(pages.at(-1)?.results).toHaveLength(10);
    expect(pages.at(-1)?.next_cursor).toBeNull();
  });

  test("without limit a page holds 50 payouts", async () => {
    const response = await api.request("GET", "/api/payouts/");
    expect(response.body.results).toHaveLength(50);
    expect(response.body.next_cursor).toEqual(expect.any(String));
  });

  test("limit 200 is allowed", async () => {
    const response = await api.request("GET", "/api/payouts/?limit=200");
    expect(response.status).toBe(200);
    expect(response.body.results).toHaveLength(200);
  });

  test("a page holds whole payouts as the resource describes them", async () => {
    const response = await api.request("GET", "/api/payouts/?limit=1&status=FAILED");
    const newest = newestFirst(seeded.filter((r) => r.status === "FAILED"))[0] as Seeded;
    expect(response.body.results).toEqual([
      {
        id: newest.id,
        amount: expect.stringMatching(/^\d+\.00$/),
        currency: newest.currency,
        recipient_details: expect.stringMatching(/^recipient \d+$/),
        comment: "",
        status: "FAILED",
        failure_reason: "gateway refused",
        created_at: newest.createdAt,
        updated_at: newest.createdAt,
        processed_at: newest.createdAt,
      },
    ]);
  });

  test("a filter that matches nothing gives an empty last page", async () => {
    const response = await api.request("GET", `/api/payouts/?created_after=${at(100_000)}`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ results: [], next_cursor: null });
  });

  test("timestamps with an offset name the same instant", async () => {
    const response = await api.request(
      "GET",
      `/api/payouts/?limit=200&created_before=${encodeURIComponent("2026-11-26T13:00:00.030+03:00")}`,
    );
    expect(response.body.results.map((r: { id: string }) => r.id)).toEqual(
      newestFirst(seeded.filter((r) => r.createdAt < at(30))).map((r) => r.id),
    );
  });

  test("created_after finer than a millisecond excludes the payouts of the millisecond before it", async () => {
    const response = await api.request("GET", "/api/payouts/?limit=200&created_after=2026-11-26T10:00:00.020001Z");
    expect(response.body.results.map((r: { id: string }) => r.id)).toEqual(
      newestFirst(seeded.filter((r) => r.createdAt >= at(21))).map((r) => r.id),
    );
  });

  test("created_before finer than a millisecond includes the payouts of that millisecond", async () => {
    const response = await api.request("GET", "/api/payouts/?limit=200&created_before=2026-11-26T10:00:00.020001Z");
    expect(response.body.results.map((r: { id: string }) => r.id)).toEqual(
      newestFirst(seeded.filter((r) => r.createdAt <= at(20))).map((r) => r.id),
    );
  });
});

describe("a cursor carries its list", () => {
  const firstPage = async (query: string) => (await api.request("GET", `/api/payouts/?${query}`)).body;
  const otherFilters = "belongs to a list with other filters: send it alone, or with the filters of its first page";

  test("the README's example: the next page of ?limit=20&status=COMPLETED&currency=RUB asked for with the cursor alone", async () => {
    const expected = newestFirst(seeded.filter((r) => r.status === "COMPLETED" && r.currency === "RUB")).map(
      (r) => r.id,
    );
    const first = await firstPage("limit=5&status=COMPLETED&currency=RUB");
    const next = await api.request("GET", `/api/payouts/?cursor=${first.next_cursor}`);
    expect(next.status).toBe(200);
    expect(next.body.results.map((r: { id: string }) => r.id)).toEqual(expected.slice(5, 10));
  });

  test("a limit sent with the cursor changes only the page size", async () => {
    const expected = newestFirst(seeded.filter((r) => r.currency === "EUR")).map((r) => r.id);
    const first = await firstPage("limit=3&currency=EUR");
    const next = await api.request("GET", `/api/payouts/?cursor=${first.next_cursor}&limit=10`);
    expect(next.body.results.map((r: { id: string }) => r.id)).toEqual(expected.slice(3, 13));
  });

  const mismatches: [string, string, string][] = [
    ["another currency", "currency=EUR", "currency=USD"],
    ["another status", "status=NEW", "status=FAILED"],
    ["a filter its list did not have", "currency=EUR", "currency=EUR&status=NEW"],
    ["only some of its filters", "currency=EUR&status=NEW", "currency=EUR"],
    ["another created_after", `created_after=${at(5)}`, `created_after=${at(6)}`],
    ["another created_before", `created_before=${at(150)}`, `created_before=${at(149)}`],
    ["a filter when its list had none", "", "status=NEW"],
  ];
  for (const [name, first, sent] of mismatches) {
    test(`a cursor sent with ${name} is a 400 that says so`, async () => {
      const { next_cursor } = await firstPage(`${first}&limit=2`);
      expect(next_cursor).toEqual(expect.any(String));
      expectValidationProblem(
        await api.request("GET", `/api/payouts/?${sent}&cursor=${next_cursor}`),
        [{ field: "cursor", message: otherFilters }],
        "query parameter",
      );
    });
  }

  test("the same filters written another way (an offset for the same instant) are the same list", async () => {
    const { next_cursor } = await firstPage(`created_before=${at(150)}&limit=2`);
    const sameInstant = encodeURIComponent("2026-11-26T13:00:00.150+03:00");
    const response = await api.request("GET", `/api/payouts/?created_before=${sameInstant}&cursor=${next_cursor}`);
    expect(response.status).toBe(200);
  });

  test("two cursors are a 400", async () => {
    const { next_cursor } = await firstPage("limit=2");
    expectValidationProblem(
      await api.request("GET", `/api/payouts/?cursor=${next_cursor}&cursor=${next_cursor}`),
      [{ field: "cursor", message: "must be given once" }],
      "query parameter",
    );
  });
});

describe("refused query parameters", () => {
  const cursorOf = (text: string) => Buffer.from(text).toString("base64url");
  const validId = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";
  const limitMessage = "must be a whole number from 1 to 200";
  const timestampMessage = "must be an RFC 3339 timestamp, like 2026-11-26T10:15:30Z";
  const cursorMessage = "is not a cursor this service issued";

  const cases: [string, string, { field: string; message: string }[]][] = [
    ["limit 0", "limit=0", [{ field: "limit", message: limitMessage }]],
    ["limit 201", "limit=201", [{ field: "limit", message: limitMessage }]],
    ["limit -1", "limit=-1", [{ field: "limit", message: limitMessage }]],
    ["limit 1.5", "limit=1.5", [{ field: "limit", message: limitMessage }]],
    ["limit abc", "limit=abc", [{ field: "limit", message: limitMessage }]],
    ["an empty limit", "limit=", [{ field: "limit", message: limitMessage }]],
    ["a cursor that is not base64", "cursor=%%%", [{ field: "cursor", message: cursorMessage }]],
    ["a cursor of garbage", `cursor=${cursorOf("garbage")}`, [{ field: "cursor", message: cursorMessage }]],
    ["an empty cursor", "cursor=", [{ field: "cursor", message: cursorMessage }]],
    [
      "a cursor whose id is not a UUID",
      `cursor=${cursorOf("2026-11-26T10:00:00.000Z|not-a-uuid")}`,
      [{ field: "cursor", message: cursorMessage }],
    ],
    [
      "a cursor whose time is not a date",
      `cursor=${cursorOf(`2026-13-45T10:00:00.000Z|${validId}`)}`,
      [{ field: "cursor", message: cursorMessage }],
    ],
    [
      "a cursor with extra parts",
      `cursor=${cursorOf(`2026-11-26T10:00:00.000Z|${validId}|x`)}`,
      [{ field: "cursor", message: cursorMessage }],
    ],
    [
      "status in lower case",
      "status=new",
      [{ field: "status", message: "must be one of NEW, PROCESSING, COMPLETED, FAILED, CANCELLED" }],
    ],
    [
      "an unknown status",
      "status=PAID",
      [{ field: "status", message: "must be one of NEW, PROCESSING, COMPLETED, FAILED, CANCELLED" }],
    ],
    ["currency in lower case", "currency=usd", [{ field: "currency", message: "must be one of RUB, USD, EUR" }]],
    ["an empty currency", "currency=", [{ field: "currency", message: "must be one of RUB, USD, EUR" }]],
    [
      "created_after that is not a timestamp",
      "created_after=yesterday",
      [{ field: "created_after", message: timestampMessage }],
    ],
    [
      "created_after without a time zone",
      "created_after=2026-11-26T10:00:00",
      [{ field: "created_after", message: timestampMessage }],
    ],
    [
      "created_after as a date only",
      "created_after=2026-11-26",
      [{ field: "created_after", message: timestampMessage }],
    ],
    [
      "created_after on 30 February",
      "created_after=2026-02-30T00:00:00Z",
      [{ field: "created_after", message: timestampMessage }],
    ],
    [
      "created_after in month 13",
      "created_after=2026-13-01T00:00:00Z",
      [{ field: "created_after", message: timestampMessage }],
    ],
    [
      "created_before at hour 24",
      "created_before=2026-11-26T24:00:00Z",
      [{ field: "created_before", message: timestampMessage }],
    ],
    [
      "created_before at minute 60",
      "created_before=2026-11-26T10:60:00Z",
      [{ field: "created_before", message: timestampMessage }],
    ],
    [
      "created_before with an offset of 24 hours",
      `created_before=${encodeURIComponent("2026-11-26T10:00:00+24:00")}`,
      [{ field: "created_before", message: timestampMessage }],
    ],
    [
      "created_before as epoch milliseconds",
      "created_before=1795667464993",
      [{ field: "created_before", message: timestampMessage }],
    ],
    ["an unknown parameter", "sort=asc", [{ field: "sort", message: "is not a known query parameter" }]],
    ["a repeated parameter", "status=NEW&status=FAILED", [{ field: "status", message: "must be given once" }]],
    [
      "several invalid parameters together",
      "limit=0&currency=GBP&offset=10",
      [
        { field: "limit", message: limitMessage },
        { field: "currency", message: "must be one of RUB, USD, EUR" },
        { field: "offset", message: "is not a known query parameter" },
      ],
    ],
  ];

  for (const [name, query, errors] of cases) {
    test(`${name} is refused with 400`, async () => {
      const response = await api.request("GET", `/api/payouts/?${query}`);
      expectValidationProblem(response, errors, "query parameter");
    });
  }
});
