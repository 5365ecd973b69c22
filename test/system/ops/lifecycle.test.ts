// The process's handlers: SIGTERM is handled from the first moments of a start (a container's PID 1
// ignores a signal it has no handler for), and an error nobody catches is one log line and a
// non-zero exit, in the process and in a worker thread.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { amqpUrl } from "../../kit/broker";
import { databaseUrl } from "../../kit/db";
import { freePort, killSpawned, startMain } from "../../kit/processes";

const ROOT = join(import.meta.dir, "..", "..", "..");
const children: Subprocess[] = [];
afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await killSpawned();
}, 30_000);

const json = (line: string) => JSON.parse(line) as Record<string, unknown>;
const lines = (text: string) => text.split("\n").filter(Boolean).map(json);

/** Whether the process has a handler for SIGTERM (signal 15: bit 14 of SigCgt in /proc). */
function catchesSigterm(pid: number): boolean {
  try {
    const mask = /SigCgt:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0";
    return (BigInt(`0x${mask}`) & (1n << 14n)) !== 0n;
  } catch {
    return false;
  }
}

function start(args: string[], env: Record<string, string>) {
  const child = Bun.spawn(["bun", join(ROOT, "src", "main.ts"), ...args], {
    env: { ...process.env, HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  return child;
}

async function output(child: Subprocess<"ignore", "pipe", "pipe">) {
  const [exitCode, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  return { exitCode, signal: child.signalCode, stdout: lines(stdout), stderr: lines(stderr) };
}

test("SIGTERM is caught before the api listens, and a SIGTERM at that moment exits 0", async () => {
  const port = freePort();
  const child = start(["--role=api"], { PORT: String(port) });
  // Polled tightly: the handler comes with the first module, long before the api listens.
  while (!catchesSigterm(child.pid)) await Bun.sleep(1);
  const listening = await fetch(`http://127.0.0.1:${port}/health/live`).then(
    () => true,
    () => false,
  );
  child.kill("SIGTERM");
  const result = await output(child);
  expect(listening).toBe(false);
  expect(result).toMatchObject({ exitCode: 0, signal: null });
  expect(result.stdout.map((l) => l.msg)).toContain("shutting down");
}, 20_000);

test("a SIGTERM while migrate waits for the database exits 1 at once: the migrations were not applied", async () => {
  const port = freePort();
  const url = new URL(databaseUrl);
  url.port = String(port);
  const migrate = startMain(["--role=migrate"], {
    LOG_LEVEL: "info",
    DATABASE_URL: url.toString(),
    MIGRATE_WAIT_MS: "60000",
  });
  // Stopped while it waits: once it has said so.
  await migrate.line((line) => line.includes("database not reachable yet; retrying"));
  migrate.child.kill("SIGTERM");
  const { exitCode, stderr } = await migrate.done;
  expect(exitCode).toBe(1);
  expect(stderr.map((l) => json(l).msg)).toContain("stopped before the migrations were applied");
}, 20_000);

test("a SIGTERM to a worker still waiting for RabbitMQ exits 0", async () => {
  const port = freePort();
  const url = new URL(amqpUrl);
  url.port = String(port);
  const child = start(["--role=worker"], { AMQP_URL: url.toString(), WORKER_THREADS: "1" });
  const stdout = child.stdout.getReader();
  // Wait until its threads run, then stop it.
  for (let text = ""; !text.includes("worker threads started"); ) {
    const { value, done } = await stdout.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  stdout.releaseLock();
  child.kill("SIGTERM");
  expect(await child.exited).toBe(0);
}, 30_000);

for (const kind of ["exception", "rejection"]) {
  test(`an uncaught ${kind} is one JSON line with the stack as a field, and exit 1`, async () => {
    const child = Bun.spawn(["bun", join(import.meta.dir, "fixtures", "uncaught.ts"), kind], {
      stdout: "pipe",
      stderr: "pipe",
    });
    children.push(child);
    const result = await output(child);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toEqual([]);
    expect(result.stderr).toEqual([
      expect.objectContaining({
        level: "error",
        msg: `${kind === "exception" ? "uncaught exception" : "unhandled rejection"}; exiting`,
        err: expect.objectContaining({ stack: expect.stringContaining("uncaught.ts") }),
      }),
    ]);
  });
}

test("a lost connection's error that also surfaces as an unhandled rejection is one warning, and the process carries on", async () => {
  const child = Bun.spawn(["bun", join(import.meta.dir, "fixtures", "uncaught.ts"), "socket-write"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  const result = await output(child);
  expect(result.exitCode).toBe(0);
  expect([...result.stdout, ...result.stderr]).toEqual([
    expect.objectContaining({ level: "warn", msg: "a lost connection's error surfaced again; its owner handles it" }),
  ]);
});

test("a worker thread's uncaught error is one line from the thread, which exits 1 and is restarted", async () => {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LOG_LEVEL: "info" };
  // The thread refuses to start without AMQP_URL: an error thrown at its top level.
  delete env.AMQP_URL;
  const child = Bun.spawn(["bun", join(import.meta.dir, "fixtures", "threads.ts"), "2500"], {
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  const result = await output(child);
  expect(result.exitCode).toBe(0);
  const all = [...result.stdout, ...result.stderr];
  const crashes = all.filter((l) => l.msg === "uncaught exception; exiting");
  expect(crashes.length).toBeGreaterThanOrEqual(2);
  expect(crashes[0]).toMatchObject({
    role: "worker",
    thread: expect.any(Number),
    err: expect.objectContaining({
      message: "worker threads need DATABASE_URL and AMQP_URL",
      stack: expect.any(String),
    }),
  });
  const restarts = all.filter((l) => l.msg === "worker thread exited; restarting");
  expect(restarts.length).toBeGreaterThanOrEqual(2);
  expect(restarts.every((l) => l.code === 1)).toBe(true);
}, 20_000);

test("the entry point installs the handlers before it loads the program, and the binary is built split from it", () => {
  const statements = readFileSync(join(ROOT, "src", "entry.ts"), "utf8")
    .split("\n")
    .filter((line) => line && !line.startsWith("//"));
  expect(statements).toEqual(['import "./roles/lifecycle";', 'await import("./main");']);
  const { scripts } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  expect(scripts.start).toContain("bun run src/entry.ts");
  expect(scripts.build).toStartWith("bun build src/entry.ts src/roles/worker-thread.ts --compile --splitting ");
});
