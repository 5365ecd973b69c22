// The program as operators run it: `bun src/main.ts --role=...` in a child process, on the run's
// database and vhost (importing this module makes both), on free ports. Whatever a test starts is
// tracked here and stopped by killSpawned() or stopEverything(), even when the test failed.
import { join } from "node:path";
import type { Subprocess } from "bun";
import { connectPostgres } from "../../src/db/client";
import { SCOPES } from "../../src/keys/model";
import { createKey, TEST_SECRET_KEYS } from "./api";
import "./broker";
import { runCleanups } from "./cleanup";
import { databaseUrl } from "./db";
import { childLogLevel } from "./log";
import { eventually } from "./wait";

export const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "main.ts");

// Defaults for every process a test spawns with process.env: errors only, and several workers
// may run at once, each taking a free port for its metrics.
process.env.LOG_LEVEL ??= childLogLevel;
process.env.METRICS_PORT ??= "0";
// Every role on PostgreSQL needs the key that encrypts webhook signing secrets.
process.env.WEBHOOK_SECRET_KEYS ??= TEST_SECRET_KEYS;

const spawned = new Set<Subprocess>();

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

let runKey: Promise<string> | undefined;

/**
 * A key with every scope in the run's database, made once (as the keys role makes one): what a
 * test sends to the api and all roles it spawns on that database.
 */
export function processKey(): Promise<string> {
  runKey ??= (async () => {
    const database = connectPostgres(databaseUrl, 1, "payouts-test-key");
    try {
      return await createKey(database, SCOPES, "test processes");
    } finally {
      await database.close();
    }
  })();
  return runKey;
}

/** `headers` with the Authorization of `key` (default: processKey()). */
export async function withKey(headers: Record<string, string> = {}, key?: string): Promise<Record<string, string>> {
  return { ...headers, authorization: `Bearer ${key ?? (await processKey())}` };
}

/** Tracks a child for killSpawned() and stopEverything(). */
export function track<T extends Subprocess>(child: T): T {
  spawned.add(child);
  void child.exited.then(() => spawned.delete(child));
  return child;
}

/**
 * Starts a role with the run's DATABASE_URL and AMQP_URL plus `env`, logging errors only unless
 * TEST_LOG_LEVEL says otherwise; stderr goes to the test's output.
 */
export function spawnRole(role: "api" | "worker" | "all", env: Record<string, string> = {}): Subprocess {
  return track(
    Bun.spawn([process.execPath, MAIN, `--role=${role}`], {
      cwd: ROOT,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        LOG_LEVEL: childLogLevel,
        DB_POOL_SIZE: "4",
        METRICS_PORT: "0",
        ...env,
      },
      stdout: process.env.TEST_LOG_LEVEL ? "inherit" : "ignore",
      stderr: "inherit",
    }),
  );
}

const lines = (text: string) => text.split("\n").filter(Boolean);

/**
 * Starts `bun src/main.ts args` with the run's URLs plus `env`, reading stdout and stderr as they
 * come: `line(match)` resolves with the first line (of either) that matches, as soon as it is
 * written; `done` with the exit code and every line once the process ended.
 */
export function startMain(args: string[], env: Record<string, string>) {
  const child = track(
    Bun.spawn([process.execPath, MAIN, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" }),
  );
  const seen: string[] = [];
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let text = "";
    let partial = "";
    for await (const chunk of stream) {
      const decoded = decoder.decode(chunk, { stream: true });
      text += decoded;
      const parts = (partial + decoded).split("\n");
      partial = parts.pop() ?? "";
      seen.push(...parts.filter(Boolean));
    }
    if (partial) seen.push(partial);
    return lines(text);
  };
  const done = Promise.all([child.exited, read(child.stdout), read(child.stderr)]).then(
    ([exitCode, stdout, stderr]) => ({ exitCode, stdout, stderr }),
  );
  return {
    child,
    done,
    line: (match: (line: string) => boolean, timeoutMs = 20_000) =>
      eventually(
        async () => {
          const found = seen.find(match);
          if (found === undefined && child.exitCode !== null)
            throw new Error(`exited ${child.exitCode} before the line`);
          return found;
        },
        timeoutMs,
        20,
      ),
  };
}

/** Runs `bun src/main.ts args` to its end with the run's URLs plus `env`; stdout and stderr as lines. */
export function runMain(args: string[], env: Record<string, string>) {
  return startMain(args, env).done;
}

/**
 * Creates a payout on a running api over HTTP (201 expected) and waits until it reads COMPLETED;
 * returns it as the api shows it. `key` by default: processKey() (an api on the run's database).
 */
export async function createAndAwaitCompleted(
  base: string,
  body: Record<string, unknown>,
  timeoutMs: number,
  key?: string,
): Promise<Record<string, unknown>> {
  const headers = await withKey({}, key);
  const created = await fetch(`${base}/api/payouts/`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  return eventually(async () => {
    const payout = (await (await fetch(`${base}/api/payouts/${id}/`, { headers })).json()) as Record<string, unknown>;
    return payout.status === "COMPLETED" ? payout : undefined;
  }, timeoutMs);
}

/**
 * For afterAll (give the hook more than `graceMs`: 30 s): SIGTERM every child still running, then
 * SIGKILL what has not exited in `graceMs`.
 */
export async function killSpawned(graceMs = 10_000): Promise<void> {
  await Promise.all(
    [...spawned].map(async (child) => {
      child.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
      const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
      if (!exited) child.kill("SIGKILL");
      await child.exited;
    }),
  );
}

/**
 * For afterEach: stops what a test started, even when the test failed: children are killed, then
 * what onCleanup() registered is stopped.
 */
export async function stopEverything(): Promise<void> {
  await killSpawned(0);
  await runCleanups();
}
