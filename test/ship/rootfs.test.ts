// The image's assumptions, checked without a container engine: the compiled binary in a root
// filesystem that holds only the libraries `ldd` names and drizzle/ (as distroless does), run as
// uid 65532 with that root read-only and no writable path, in mount and PID namespaces of its own
// (so it is PID 1, as in a container) on the host's network, to reach PostgreSQL and RabbitMQ on
// 127.0.0.1. Through migrate, api and worker to a COMPLETED payout, then SIGTERM to each.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import postgres from "postgres";
import { TEST_SECRET_KEYS } from "../kit/api";
import { amqpUrl } from "../kit/broker";
import { databaseUrl as runDatabaseUrl } from "../kit/db";
import { createAndAwaitCompleted, freePort } from "../kit/processes";
import { eventually } from "../kit/wait";
import { buildBinary } from "./build";

const UID = 65532;

/** Why this machine cannot run the test, or undefined when it can. */
function refusal(): string | undefined {
  if (process.getuid?.() !== 0) return "it needs root (unshare, mount, chroot)";
  const probe = Bun.spawnSync(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "true"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  if (probe.exitCode !== 0) return `unshare --mount --pid was refused: ${probe.stderr.toString().trim()}`;
  return undefined;
}
const refused = refusal();
if (refused) console.warn(`SKIPPED test/ship/rootfs.test.ts: ${refused}`);

// Bind the root onto itself read-only, mount this PID namespace's /proc (a container runtime does
// both), then become uid 65532 inside it and run the binary as PID 1.
const ENTER = `root=$1; shift
mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" && mount -t proc proc "$root/proc" &&
exec chroot --userspec=${UID}:${UID} "$root" /app/payouts "$@"`;

describe.skipIf(refused !== undefined)("the binary in a minimal read-only root, as uid 65532 and PID 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "payouts-rootfs-"));
  const root = join(dir, "root");
  const databaseUrl = new URL(runDatabaseUrl);
  const fresh = `${databaseUrl.pathname.slice(1)}_rootfs`;
  const admin = postgres(databaseUrl.toString(), { max: 1, onnotice: () => {} });
  databaseUrl.pathname = `/${fresh}`;
  const running: Subprocess[] = [];
  let apiPort = 0;
  let metricsPort = 0;

  beforeAll(async () => {
    const binary = buildBinary(dir);
    for (const path of ["app", "proc"]) mkdirSync(join(root, path), { recursive: true });
    copyFileSync(binary, join(root, "app", "payouts"));
    cpSync(join(dirname(binary), "drizzle"), join(root, "app", "drizzle"), { recursive: true });
    const ldd = Bun.spawnSync(["ldd", binary], { stdout: "pipe" }).stdout.toString();
    for (const library of ldd.match(/\/\S+/g) ?? []) {
      mkdirSync(join(root, dirname(library)), { recursive: true });
      // The file itself where ldd names it (a symlink's target copied in its place).
      copyFileSync(library, join(root, library));
    }
    chmodSync(root, 0o755);
    await admin.unsafe(`CREATE DATABASE "${fresh}"`);
    [apiPort, metricsPort] = [freePort(), freePort()];
  }, 300_000);

  afterAll(async () => {
    for (const child of running) child.kill("SIGKILL");
    await Promise.all(running.map((child) => child.exited));
    await admin.unsafe(`DROP DATABASE IF EXISTS "${fresh}" WITH (FORCE)`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  /** Runs the binary in the root; its output is the test's (stderr) or dropped (stdout). */
  function enter(args: string[], env: Record<string, string>, stdout: "ignore" | "pipe" = "ignore"): Subprocess {
    const child = Bun.spawn(["unshare", "--mount", "--pid", "--fork", "sh", "-c", ENTER, "sh", root, ...args], {
      // Only what the image's environment would hold, and PATH for the mount and chroot above.
      env: {
        PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
        DATABASE_URL: databaseUrl.toString(),
        AMQP_URL: amqpUrl,
        WEBHOOK_SECRET_KEYS: TEST_SECRET_KEYS,
        BUN_JSC_forceRAMSize: "134217728",
        BUN_JSC_useFTLJIT: "0",
        LOG_LEVEL: "info",
        ...env,
      },
      stdin: "ignore",
      stdout,
      stderr: "inherit",
    });
    running.push(child);
    return child;
  }

  /** The binary's PID on the host: unshare's child (sh exec'd chroot, which exec'd the binary). */
  const binaryPid = (unshare: Subprocess) =>
    eventually(async () => {
      const children = readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, "utf8").trim();
      const pid = Number(children.split(" ")[0]);
      return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("/app/payouts") ? pid : undefined;
    }, 10_000);

  const status = (pid: number) => readFileSync(`/proc/${pid}/status`, "utf8");
  const api = () => `http://127.0.0.1:${apiPort}`;
  const pids: Record<string, number> = {};
  const processes: Record<string, Subprocess> = {};

  test("--role=migrate applies every migration to an empty database and exits 0", async () => {
    // Its one line ("migrations applied") goes to stdout, dropped here; the database shows the rest.
    expect(await enter(["--role=migrate"], {}).exited).toBe(0);
    const journal = JSON.parse(readFileSync(join(root, "app", "drizzle", "meta", "_journal.json"), "utf8"));
    const migrated = postgres(databaseUrl.toString(), { max: 1, onnotice: () => {} });
    try {
      const [row] = await migrated`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`;
      expect(row?.n).toBe(journal.entries.length);
    } finally {
      await migrated.end();
    }
  }, 60_000);

  test("api and worker run there as PID 1, uid 65532, on a read-only root holding only app/, the libraries and proc/", async () => {
    processes.api = enter(["--role=api"], { PORT: String(apiPort) });
    processes.worker = enter(["--role=worker"], {
      WORKER_THREADS: "2",
      GATEWAY_LATENCY_MS: "0",
      METRICS_PORT: String(metricsPort),
    });
    for (const role of ["api", "worker"]) {
      const pid = await binaryPid(processes[role] as Subprocess);
      pids[role] = pid;
      expect(status(pid)).toMatch(new RegExp(`\\nNSpid:\\s+${pid}\\s+1\\n`));
      expect(status(pid)).toMatch(new RegExp(`\\nUid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}\\n`));
      // The process's root, as it sees it: mounted read-only.
      const rootMount = readFileSync(`/proc/${pid}/mountinfo`, "utf8")
        .split("\n")
        .find((line) => line.split(" ")[4] === "/");
      expect(rootMount?.split(" ")[5]?.split(",")).toContain("ro");
      expect(readdirSync(`/proc/${pid}/root`).sort()).toEqual(
        ["app", "lib", "lib64", "proc", "usr"].filter((entry) => readdirSync(root).includes(entry)),
      );
    }
    expect(readdirSync(root).sort().join(",")).toMatch(/^app,lib(,lib64)?,proc(,usr)?$/);
  }, 30_000);

  test("a payout posted to that api, with a key made by --role=keys there, is paid by that worker: COMPLETED", async () => {
    await eventually(async () => (await fetch(`${api()}/health/ready`).catch(() => undefined))?.ok, 30_000, 200);
    const keys = enter(
      ["--role=keys", "create", "--name", "rootfs", "--scopes", "payouts:read,payouts:write"],
      {},
      "pipe",
    );
    const made = await new Response(keys.stdout as ReadableStream).text();
    expect(await keys.exited).toBe(0);
    const { secret } = JSON.parse(made) as { secret: string };
    const payout = await createAndAwaitCompleted(
      api(),
      { amount: "65.53", currency: "USD", recipient_details: "minimal root" },
      30_000,
      secret,
    );
    expect(payout).toMatchObject({ amount: "65.53", status: "COMPLETED" });
  }, 60_000);

  test("SIGTERM to each (PID 1 in its namespace) exits 0", async () => {
    for (const role of ["api", "worker"]) {
      process.kill(pids[role] as number, "SIGTERM");
      expect({ role, exitCode: await (processes[role] as Subprocess).exited }).toEqual({ role, exitCode: 0 });
    }
  }, 60_000);
});
