// SIGTERM on the api role: it stops accepting, finishes the request in flight, closes and exits 0.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { testApi } from "../../kit/api";
import { databaseUrl, testDatabase } from "../../kit/db";
import { freePort, killSpawned, processKey, spawnRole, withKey } from "../../kit/processes";
import { eventually } from "../../kit/wait";

const database = testDatabase();
const locker = postgres(databaseUrl, { max: 2, onnotice: () => {} });

afterAll(async () => {
  await killSpawned();
  await locker.end({ timeout: 1 });
  await database.close();
}, 30_000);

test("SIGTERM while a request is in flight: the request gets its normal response and the process exits 0", async () => {
  const { request } = testApi(database);
  const created = await request("POST", "/api/payouts/", { amount: "9.99", currency: "RUB", recipient_details: "x" });
  const id = created.body.id as string;

  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const api = spawnRole("api", { PORT: `${port}` });
  await eventually(
    () =>
      fetch(`${base}/health/live`).then(
        (r) => r.ok,
        () => false,
      ),
    20_000,
  );

  // Hold the payout's row so that the api's UPDATE waits for us: a request that is surely in flight.
  const unlock = Promise.withResolvers<void>();
  const holding = locker.begin(async (tx) => {
    await tx`SELECT id FROM payouts WHERE id = ${id} FOR UPDATE`;
    await unlock.promise;
  });
  const inFlight = fetch(`${base}/api/payouts/${id}/`, {
    method: "PATCH",
    headers: await withKey({ "content-type": "application/json", "x-request-id": "in-flight-1" }),
    body: JSON.stringify({ comment: "finished after SIGTERM" }),
  });
  try {
    await eventually(async () => {
      const [waiting] = await locker`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'payouts-api' AND wait_event_type = 'Lock' AND datname = current_database()`;
      return waiting?.n === 1;
    });

    api.kill("SIGTERM");
    // No new connections once it is stopping.
    await eventually(
      () =>
        // A new connection each time: a pooled keep-alive one would not show the listener closed.
        fetch(`${base}/health/live`, { keepalive: false }).then(
          () => false,
          () => true,
        ),
      5000,
    );
    expect(api.exitCode).toBeNull();
  } finally {
    // Whatever failed above, the row lock goes: a test left holding it would stall every later one.
    unlock.resolve();
  }
  await holding;
  const response = await inFlight;
  expect(response.status).toBe(200);
  expect(response.headers.get("x-request-id")).toBe("in-flight-1");
  expect(((await response.json()) as { comment: string }).comment).toBe("finished after SIGTERM");

  expect(await api.exited).toBe(0);
  const read = await request("GET", `/api/payouts/${id}/`);
  expect(read.body.comment).toBe("finished after SIGTERM");
}, 60_000);

/**
 * One client on one kept-alive connection, sending request after request as soon as each answer
 * is in, until an answer says `Connection: close` or the connection ends. Counts what it sent, what
 * was answered (with its status) and what was lost: written, then the connection closed unanswered.
 */
async function keptAliveClient(port: number, request: (n: number) => string) {
  const result = { sent: 0, statuses: [] as number[], lost: 0, refused: false, closeAnswered: false };
  let buffer = "";
  let waiting: PromiseWithResolvers<string> | undefined;
  let ended = false;
  const onEnd = () => {
    ended = true;
    waiting?.reject(new Error("connection closed"));
  };
  let socket: Awaited<ReturnType<typeof Bun.connect>>;
  try {
    socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(_, data) {
          buffer += Buffer.from(data).toString();
          const headEnd = buffer.indexOf("\r\n\r\n");
          if (headEnd === -1) return;
          const length = Number(/\r\ncontent-length: (\d+)/i.exec(buffer.slice(0, headEnd))?.[1] ?? 0);
          if (buffer.length < headEnd + 4 + length) return;
          const head = buffer.slice(0, headEnd);
          buffer = buffer.slice(headEnd + 4 + length);
          waiting?.resolve(head);
        },
        close: onEnd,
        end: onEnd,
        error: onEnd,
      },
    });
  } catch {
    result.refused = true;
    return result;
  }
  while (!ended) {
    waiting = Promise.withResolvers<string>();
    socket.write(request(result.sent));
    result.sent++;
    try {
      const head = await waiting.promise;
      result.statuses.push(Number(head.split(" ")[1]));
      if (/\r\nconnection: close/i.test(head)) {
        result.closeAnswered = true;
        break;
      }
    } catch {
      result.lost++;
    }
  }
  socket.end();
  return result;
}

test("SIGTERM under load: every request sent on a kept-alive connection is answered, none reset; exit 0", async () => {
  const port = await freePort();
  const api = spawnRole("api", { PORT: `${port}` });
  await eventually(
    () =>
      fetch(`http://127.0.0.1:${port}/health/ready`).then(
        (r) => r.ok,
        () => false,
      ),
    20_000,
  );
  // Creates, the request that matters: each one answered 201 must have its payout.
  const key = await processKey();
  const create = (n: number) => {
    const body = JSON.stringify({ amount: "1.00", currency: "USD", recipient_details: `drain ${n}` });
    return `POST /api/payouts/ HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  };
  const clients = Array.from({ length: 24 }, () => keptAliveClient(port, create));
  // Every client has had answers on its connection: it is kept alive between requests.
  await eventually(async () => {
    const [row] = await locker`SELECT count(*)::int AS n FROM payouts WHERE recipient_details LIKE 'drain %'`;
    return (row?.n ?? 0) >= 24 * 5;
  }, 20_000);
  api.kill("SIGTERM");
  const results = await Promise.all(clients);
  expect(await api.exited).toBe(0);

  const sent = results.reduce((n, r) => n + r.sent, 0);
  const answered = results.flatMap((r) => r.statuses);
  expect({ lost: results.reduce((n, r) => n + r.lost, 0), refused: results.filter((r) => r.refused).length }).toEqual({
    lost: 0,
    refused: 0,
  });
  expect(answered.length).toBe(sent);
  expect(answered.filter((status) => status !== 201)).toEqual([]);
  // Each connection was told to close by an answer, not closed under it.
  expect(results.every((r) => r.closeAnswered)).toBe(true);
}, 60_000);
