import { mkdirSync } from "node:fs";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { deadline } from "../lib/timers";
import { type Availability, alwaysAvailable, probeAvailability } from "./availability";
import * as schema from "./schema";

/** The one database type the code above the driver sees: postgres.js and PGlite alike. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** The rows of a raw `db.execute`: postgres.js answers with an array, PGlite with `{ rows }`. */
export function resultRows<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

export type Database = {
  db: Db;
  /** True when the database answers within the timeout. */
  ping(timeoutMs?: number): Promise<boolean>;
  /** Whether the database answers right now (probed in the background). */
  availability: Availability;
  close(): Promise<void>;
};

// A dead database must not hang requests: connecting gives up after this, statements after
// STATEMENT_TIMEOUT on the server side.
const CONNECT_TIMEOUT_S = 3;
const STATEMENT_TIMEOUT_MS = 15_000;

export function connectPostgres(url: string, poolSize: number, applicationName: string): Database {
  const client = postgres(url, {
    max: poolSize,
    connect_timeout: CONNECT_TIMEOUT_S,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: applicationName, statement_timeout: STATEMENT_TIMEOUT_MS },
  });
  const db = drizzlePostgres(preparingEveryStatement(client), { schema });
  const availability = probeAvailability(url, applicationName);
  return {
    db,
    ping: (timeoutMs = 2000) => answers(client`select 1`, timeoutMs),
    availability,
    async close() {
      await availability.stop();
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * drizzle asks postgres.js for an unnamed statement unless a query is `.prepare()`d, and postgres.js
 * describes an unnamed statement with parameters before running it: two round trips, a parse and
 * a plan on every execution (a webhook delivery's claim and outcome, a GET, a PATCH). Through this
 * client every statement is prepared once per connection and then only bound and executed. Their
 * texts are constants with parameters, so each connection holds a bounded set of them.
 */
function preparingEveryStatement(client: postgres.Sql): postgres.Sql {
  const unsafe = (query: string, params?: postgres.ParameterOrJSON<never>[], options?: postgres.UnsafeQueryOptions) =>
    client.unsafe(query, params, { ...options, prepare: true });
  return new Proxy(client, {
    get: (target, key, receiver) => (key === "unsafe" ? unsafe : Reflect.get(target, key, receiver)),
  });
}

/** The embedded default: PGlite (PostgreSQL compiled to WebAssembly), data under dataDir. */
export async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  mkdirSync(dataDir, { recursive: true });
  const client = new PGlite(dataDir);
  await client.waitReady;
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    ping: (timeoutMs = 2000) => answers(client.query("select 1"), timeoutMs),
    availability: alwaysAvailable,
    close: () => client.close(),
  };
}

/** Whether `query` succeeds within `ms`: a failure and a silence both mean no. */
const answers = (query: PromiseLike<unknown>, ms: number): Promise<boolean> =>
  deadline(Promise.resolve(query), ms).then(
    () => true,
    () => false,
  );
