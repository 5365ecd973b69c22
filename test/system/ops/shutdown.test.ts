// SIGTERM on the api role: it stops accepting, finishes the request in flight, closes and exits 0.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { testApi } from "../../kit/api";
import { databaseUrl, testDatabase } from "../../kit/db";
import { freePort, killSpawned, spawnRole } from "../../kit/processes";
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
    headers: { "content-type": "application/json", "x-request-id": "in-flight-1" },
    body: JSON.stringify({ comment: "finished after SIGTERM" }),
  });
  try {
    await eventually(async () => {
      const [waiting] = await locker`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'payouts-api' AND wait_event_type = 'Lock'`;
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
