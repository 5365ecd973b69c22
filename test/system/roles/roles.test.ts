// The program as operators start it: roles that need real services say so, a wrong setting stops
// it with a message naming the variable, and with no URLs at all it runs on PGlite end to end.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config";
import { localSecretKey } from "../../../src/webhooks/local-key";
import { createAndAwaitCompleted, freePort } from "../../kit/processes";
import { eventually } from "../../kit/wait";

const ROOT = join(import.meta.dir, "..", "..", "..");

/** What the kit sets for every process (test/kit/db.ts, broker.ts, processes.ts) and these tests leave out. */
const KIT_SET = new Set(["DATABASE_URL", "AMQP_URL", "WEBHOOK_SECRET_KEYS"]);

/** The test's environment without the two service URLs and the webhook secrets' key that the kit sets. */
function envWithout(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !KIT_SET.has(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

async function run(args: string[], env: Record<string, string>) {
  const proc = Bun.spawn(["bun", "src/main.ts", ...args], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
  const [exitCode, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  return { exitCode, stderr };
}

describe("roles that need the real services", () => {
  const cases: [string, string][] = [
    ["api", "--role=api needs DATABASE_URL and AMQP_URL"],
    ["worker", "--role=worker needs DATABASE_URL and AMQP_URL"],
    ["migrate", "--role=migrate needs DATABASE_URL"],
  ];
  for (const [role, message] of cases) {
    test(`--role=${role} without the URLs stops with a message naming what to set`, async () => {
      const { exitCode, stderr } = await run([`--role=${role}`], envWithout());
      expect(exitCode).toBe(2);
      expect(stderr).toStartWith(`payouts: ${message} `);
    });
  }

  test("--role=api with only DATABASE_URL names AMQP_URL alone", async () => {
    const { exitCode, stderr } = await run(
      ["--role", "api"],
      envWithout({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" }),
    );
    expect(exitCode).toBe(2);
    expect(stderr).toStartWith("payouts: --role=api needs AMQP_URL ");
  });
});

describe("the key that encrypts webhook signing secrets", () => {
  const urls = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/none", AMQP_URL: "amqp://127.0.0.1:1" };
  for (const role of ["api", "worker", "all"]) {
    test(`--role=${role} with DATABASE_URL and no WEBHOOK_SECRET_KEYS stops, naming the variable`, async () => {
      const { exitCode, stderr } = await run([`--role=${role}`], envWithout(urls));
      expect(exitCode).toBe(2);
      expect(stderr).toStartWith(`payouts: --role=${role} with DATABASE_URL needs WEBHOOK_SECRET_KEYS: `);
    });
  }

  test("a malformed WEBHOOK_SECRET_KEYS stops the program naming it, and never echoes the value", async () => {
    const value = `k1:${Buffer.alloc(31, 5).toString("base64")}`;
    const { exitCode, stderr } = await run([], envWithout({ WEBHOOK_SECRET_KEYS: value }));
    expect(exitCode).toBe(2);
    expect(stderr).toStartWith("payouts: WEBHOOK_SECRET_KEYS entry 1 must be <id>:<base64 of 32 bytes>");
    expect(stderr).not.toContain(value.slice(3));
  });
});

describe("wrong settings", () => {
  const cases: [string, Record<string, string>, string][] = [
    ["PORT=abc", { PORT: "abc" }, 'PORT must be a whole number from 0 to 65535, got "abc"'],
    ["PORT=70000", { PORT: "70000" }, 'PORT must be a whole number from 0 to 65535, got "70000"'],
    [
      "GATEWAY_FAILURE_RATE=2",
      { GATEWAY_FAILURE_RATE: "2" },
      'GATEWAY_FAILURE_RATE must be a number from 0 to 1, got "2"',
    ],
    [
      "GATEWAY_FAILURE_RATE=-0.1",
      { GATEWAY_FAILURE_RATE: "-0.1" },
      'GATEWAY_FAILURE_RATE must be a number from 0 to 1, got "-0.1"',
    ],
    ["LOG_LEVEL=verbose", { LOG_LEVEL: "verbose" }, 'LOG_LEVEL must be one of debug, info, warn, error, got "verbose"'],
    ["MAX_ATTEMPTS=0", { MAX_ATTEMPTS: "0" }, 'MAX_ATTEMPTS must be a whole number from 1 to 100, got "0"'],
    [
      "MIGRATE_WAIT_MS=-1",
      { MIGRATE_WAIT_MS: "-1" },
      'MIGRATE_WAIT_MS must be a whole number from 0 to 3600000, got "-1"',
    ],
    [
      "DATABASE_URL=mysql://x",
      { DATABASE_URL: "mysql://x" },
      "DATABASE_URL must start with postgres:// or postgresql://",
    ],
    ["AMQP_URL=not a url", { AMQP_URL: "not a url" }, "AMQP_URL must be a URL, got an unparseable value"],
  ];
  for (const [name, extra, message] of cases) {
    test(`${name} stops the program with a message naming the variable`, async () => {
      const { exitCode, stderr } = await run([], envWithout(extra));
      expect(exitCode).toBe(2);
      expect(stderr).toBe(`payouts: ${message}\n`);
    });
  }

  test("an unknown role stops the program", async () => {
    const { exitCode, stderr } = await run(["--role=web"], envWithout());
    expect(exitCode).toBe(2);
    expect(stderr).toBe('payouts: --role must be one of all, migrate, api, worker, keys, got "web"\n');
  });
});

describe("the embedded default", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "payouts-pglite-"));
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test(
    "with no DATABASE_URL and no AMQP_URL a payout is created and processed to COMPLETED",
    async () => {
      const port = freePort();
      const started = Bun.spawn(["bun", "src/main.ts"], {
        cwd: ROOT,
        env: envWithout({
          DATA_DIR: dataDir,
          HOST: "127.0.0.1",
          PORT: String(port),
          GATEWAY_LATENCY_MS: "0",
          LOG_LEVEL: "error",
        }),
        stdout: "ignore",
        stderr: "inherit",
      });
      proc = started;
      const base = `http://127.0.0.1:${port}`;

      await eventually(async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.ok, 45_000, 100);
      // The embedded default's development key, as the README's first requests send it.
      const devKey = readFileSync(join(dataDir, "dev-api-key"), "utf8").trim();
      const done = await createAndAwaitCompleted(
        base,
        { amount: "12.34", currency: "EUR", recipient_details: "embedded" },
        30_000,
        devKey,
      );
      expect(done).toMatchObject({ amount: "12.34", status: "COMPLETED", failure_reason: null });
      expect(done.processed_at).toEqual(expect.any(String));

      started.kill("SIGTERM");
      expect(await started.exited).toBe(0);

      // The embedded default made its webhook secrets' key beside its data, for its owner only,
      // and the next start reads the same one (the same file, unchanged).
      const keyFile = join(dataDir, "webhook-secret-key");
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const key = readFileSync(keyFile, "utf8");
      expect(key).toMatch(/^local:[A-Za-z0-9+/]{43}=\n$/);
      expect(loadConfig({ WEBHOOK_SECRET_KEYS: key.trim() }).webhookSecretKeys?.[0]?.key).toHaveLength(32);
      expect(localSecretKey(dataDir).keys).toBe(key.trim());
    },
    { timeout: 90_000 },
  );
});
