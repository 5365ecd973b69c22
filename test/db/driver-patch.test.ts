import { expect, test } from "bun:test";
import postgres from "postgres";

// postgres.js 3.4.9 wrote to a connection's socket after the connection had closed: the query hung
// and a TypeError escaped into the event loop, crashing the api and the worker under connection
// resets (patches/postgres@3.4.9.patch). A pinned connection shows it on the first try.
test("queries on a connection whose backend died fail with a connection error instead of hanging or crashing", async () => {
  const url = process.env.DATABASE_URL as string;
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
