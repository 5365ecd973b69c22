import { expect, test } from "bun:test";
import postgres from "postgres";
import { databaseUrl } from "../../kit/db";
import { startTcpProxy } from "../../kit/proxy";

// postgres.js 3.4.9 wrote to a connection's socket after the connection had closed: the query hung
// and a TypeError escaped into the event loop, crashing the api and the worker under connection
// resets (patches/postgres@3.4.9.patch). A pinned connection shows it on the first try.
test("queries on a connection whose backend died fail with a connection error instead of hanging or crashing", async () => {
  const url = databaseUrl;
  const pool = postgres(url, { max: 2, onnotice: () => {} });
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const pinned = await pool.reserve();
    const [backend] = await pinned<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await admin`select pg_terminate_backend(${backend?.pid ?? 0})`;
    for (let i = 0; i < 3; i++) {
      const outcome = await Promise.race([
        pinned`select 1`.then(
          () => "answered",
          (err: { code?: string }) => err.code,
        ),
        Bun.sleep(3000).then(() => "hung"),
      ]);
      // The first query may meet the reset itself; every later one finds the connection closed.
      expect(["ECONNRESET", "CONNECTION_CLOSED"]).toContain(outcome as string);
    }
  } finally {
    await pool.end({ timeout: 0 });
    await admin.end();
  }
});

// postgres.js fetched array types on a new connection with nothing awaiting it: a pool ended
// while that ran (a probe giving up, a shutdown during an outage) rejected into the event loop,
// and the process-level handler ends the process on an unhandled rejection.
test("a pool ended while its connection is still starting up leaves no unhandled rejection", async () => {
  const target = new URL(databaseUrl);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", record);
  try {
    for (const afterMs of [0, 1, 3, 10, 30]) {
      proxy.stall();
      const pool = postgres(url.toString(), { max: 1, connect_timeout: 2, onnotice: () => {} });
      const answer = pool`select 1`.then(
        () => "answered",
        () => "failed",
      );
      await Bun.sleep(300);
      proxy.heal();
      await Bun.sleep(afterMs);
      await pool.end({ timeout: 0 });
      expect(["answered", "failed"]).toContain(await answer);
      // An orphaned rejection is reported some turns after the pool ended (a single turn is not
      // enough to catch it unpatched); there is no event to wait for but the report itself.
      await Bun.sleep(50);
    }
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", record);
    proxy.stop();
  }
});
