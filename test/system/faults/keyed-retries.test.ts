// Keyed clients retrying through a failing network to PostgreSQL (issue 17): every answer to a
// create with an Idempotency-Key names the key's payout or no payout at all, and once the network
// heals a retry with the key returns that payout or creates it once. The api runs in this process
// on a pool whose connections go through a proxy that resets, stalls and loses replies.
import { afterAll, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { loadConfig } from "../../../src/config";
import { connectPostgres, resultRows } from "../../../src/db/client";
import { RETRY_WITH_KEY } from "../../../src/http/problem";
import { createAnswerBoundMs } from "../../../src/payouts/create";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";
import { startTcpProxy } from "../../kit/proxy";
import { eventually } from "../../kit/wait";

const CLIENTS = 8;
const bound = createAnswerBoundMs(loadConfig({}).createDeadlineMs);
const direct = testDatabase(2);
afterAll(() => direct.close());

type Answer = { status: number; ms: number; id?: string; payoutId?: string; location: string | null; detail?: string };

test(
  "keyed clients retrying through resets, stalls and lost replies: one payout per key, and no answer names another id",
  async () => {
    const target = new URL(process.env.DATABASE_URL as string);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const url = new URL(target);
    url.hostname = "127.0.0.1";
    url.port = String(proxy.port);
    const proxied = connectPostgres(url.toString(), 4, "payouts-test-keyed");
    // The API key is read past the faults: this test is about the create's answers, and a key
    // check that meets the outage is a 503 of its own (test/contract/keys/access.test.ts).
    const api = testApi(proxied, { keyDatabase: direct });
    const run = Bun.randomUUIDv7();
    const byKey = new Map<string, Answer[]>();
    let stopping = false;

    const post = async (key: string): Promise<Answer> => {
      const started = performance.now();
      const r = await api.request(
        "POST",
        "/api/payouts/",
        { amount: "25.00", currency: "USD", recipient_details: "GB33 BUKB", comment: key },
        { "idempotency-key": key },
      );
      return {
        status: r.status,
        ms: performance.now() - started,
        id: r.body?.id,
        payoutId: r.body?.payout_id,
        location: r.headers.get("location"),
        detail: r.body?.detail,
      };
    };
    // A client keeps its key until it hears 201, as a 503 or 504 tells it to.
    const client = async (n: number) => {
      for (let i = 0; !stopping; i++) {
        const key = `keyed-${run}-${n}-${i}`;
        const answers: Answer[] = [];
        byKey.set(key, answers);
        for (;;) {
          const answer = await post(key);
          answers.push(answer);
          if (answer.status === 201 || stopping) break;
          await Bun.sleep(50);
        }
      }
    };
    const answered = () => [...byKey.values()].flat();
    const failedSoFar = () => answered().filter((a) => a.status !== 201).length;
    const createdSoFar = () => answered().filter((a) => a.status === 201).length;
    const clients = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));

    try {
      await eventually(async () => createdSoFar() >= 20);
      // Resets, one after another, each felt before the next.
      for (let i = 0; i < 3; i++) {
        const before = failedSoFar() + createdSoFar();
        proxy.resetAll();
        await eventually(async () => failedSoFar() + createdSoFar() > before + CLIENTS);
      }
      // Connections up again after the resets (creates succeeding), so the stall below holds
      // statements already sent on them: their outcome is unknown (504), not refused (503).
      const createdBeforeStall = createdSoFar();
      await eventually(async () => createdSoFar() >= createdBeforeStall + CLIENTS, 30_000);
      // A stall long enough for every request in it to pass its deadline.
      const failedBeforeStall = failedSoFar();
      proxy.stall();
      await eventually(async () => failedSoFar() >= failedBeforeStall + CLIENTS, 30_000);
      proxy.heal();
      // Replies lost: statements run and commit, their answers never come; then the connections die.
      await eventually(async () => createdSoFar() >= 40, 30_000);
      const failedBeforeLoss = failedSoFar();
      proxy.loseReplies();
      await Bun.sleep(300);
      proxy.resetAll();
      await eventually(async () => failedSoFar() > failedBeforeLoss || createdSoFar() >= 60, 30_000);
      // Healed: creates succeed again.
      const createdAtHeal = createdSoFar();
      await eventually(async () => createdSoFar() >= createdAtHeal + 20, 30_000);
    } finally {
      stopping = true;
      await clients;
    }

    try {
      // A key whose client stopped before its 201 is retried once more now, as it was told.
      for (const [key, answers] of byKey) {
        if (answers.at(-1)?.status !== 201) answers.push(await post(key));
      }
      const all = answered();
      expect(all.filter((a) => a.ms > bound)).toEqual([]);
      expect(all.filter((a) => ![201, 503, 504].includes(a.status))).toEqual([]);
      expect(all.some((a) => a.status === 504)).toBe(true);
      expect(all.some((a) => a.status === 503)).toBe(true);

      const stored = resultRows<{ comment: string; id: string; key_payout: string | null }>(
        await direct.db.execute(sql`
          SELECT p.comment, p.id::text AS id, k.payout_id::text AS key_payout
          FROM payouts p LEFT JOIN idempotency_keys k ON k.key = p.comment
          WHERE p.comment LIKE ${`keyed-${run}-%`}`),
      );
      const payoutsOf = Map.groupBy(stored, (row) => row.comment);
      for (const [key, answers] of byKey) {
        const rows = payoutsOf.get(key) ?? [];
        // Exactly one payout per key, bound to the key.
        expect({ key, rows: rows.length, bound: rows[0]?.key_payout === rows[0]?.id }).toEqual({
          key,
          rows: 1,
          bound: true,
        });
        for (const a of answers) {
          if (a.status === 201) expect({ key, id: a.id }).toEqual({ key, id: rows[0]?.id });
          else {
            // A 503 or 504 names no payout and tells the client to keep its key.
            expect({ key, payoutId: a.payoutId, location: a.location }).toEqual({
              key,
              payoutId: undefined,
              location: null,
            });
            expect(a.detail?.endsWith(RETRY_WITH_KEY)).toBe(true);
          }
        }
      }
      // And no payout of this run belongs to no key.
      expect(stored.filter((row) => !byKey.has(row.comment))).toEqual([]);
    } finally {
      proxy.heal();
      await proxied.close();
      proxy.stop();
    }
  },
  { timeout: 120_000 },
);
