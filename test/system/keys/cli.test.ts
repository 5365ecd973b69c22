// The keys role: in-process (runKeysCommand) and as the program (--role=keys), over the run's
// PostgreSQL. One JSON object on stdout, the exit code, and no secret in any log line.
import { afterAll, describe, expect, test } from "bun:test";
import { runKeysCommand } from "../../../src/keys/cli";
import { keyService } from "../../../src/keys/service";
import { systemClock } from "../../../src/lib/clock";
import { createLogger } from "../../../src/lib/log";
import { testDatabase } from "../../kit/db";
import { runMain } from "../../kit/processes";

const database = testDatabase();
const lines: string[] = [];
const log = createLogger("debug", "json", {}, (line) => lines.push(line));

afterAll(() => database.close());

async function run(...argv: string[]) {
  const out: string[] = [];
  const code = await runKeysCommand(argv, { db: database.db, stdout: (text) => out.push(text), log });
  expect(out).toHaveLength(1);
  expect(out[0]?.endsWith("\n")).toBe(true);
  return { code, json: JSON.parse(out[0] as string) };
}

describe("runKeysCommand", () => {
  test("create, list and revoke, each one JSON object; the secret only in create's, never in a log line", async () => {
    const created = await run("create", "--name", "admin", "--scopes", "keys:manage, payouts:read");
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({
      name: "admin",
      scopes: ["keys:manage", "payouts:read"],
      created_by: "bootstrap",
    });
    const secret = created.json.secret as string;
    expect(secret).toMatch(/^pk_[0-9a-f-]{36}_[0-9A-Za-z]{43}$/);
    const keys = keyService({ db: database.db, clock: systemClock, log }, { cacheTtlMs: 0 });
    expect(await keys.check(secret)).toEqual({ id: created.json.id, scopes: ["keys:manage", "payouts:read"] });

    const listed = await run("list");
    expect(listed.code).toBe(0);
    expect(listed.json.results.map((k: { id: string }) => k.id)).toContain(created.json.id);
    expect(JSON.stringify(listed.json)).not.toContain(secret.slice(-43));

    const revoked = await run("--role=keys", "revoke", created.json.id.toUpperCase());
    expect(revoked.code).toBe(0);
    expect(revoked.json).toMatchObject({ id: created.json.id, revoked_by: "bootstrap" });
    expect(await keys.check(secret)).toBeUndefined();

    expect(lines.some((line) => line.includes(created.json.id))).toBe(true);
    for (const line of lines) expect(line).not.toContain(secret.slice(-43));
  });

  test("with an expiry", async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const created = await run("create", "--name", "ci", "--scopes", "payouts:read", "--expires-at", at);
    expect(created.code).toBe(0);
    expect(created.json.expires_at).toBe(at);
  });

  test.each([
    [[]],
    [["rotate"]],
    [["create", "--name", "x"]],
    [["create", "--name", "x", "--scopes", "payouts:admin"]],
    [["create", "--name", "x", "--scopes", "payouts:read", "--expires-at", "2001-01-01T00:00:00Z"]],
    [["create", "--name", "x", "--scopes", "payouts:read", "--bogus"]],
    [["create", "--name", "x", "--scopes", "payouts:read", "extra"]],
    [["revoke"]],
    [["revoke", "not-a-uuid"]],
    [["revoke", "0193b6c2-9c30-7c3a-9a51-2f0c8e6d4b13"]],
  ])("%j: exit 1, one JSON error object", async (argv) => {
    const result = await run(...argv);
    expect(result.code).toBe(1);
    expect(typeof result.json.error.message).toBe("string");
  });
});

test(
  "the program: bun src/main.ts --role=keys create writes the key to stdout alone, logs to stderr without the secret",
  async () => {
    const env = { LOG_LEVEL: "debug", LOG_FORMAT: "json" };
    const created = await runMain(
      ["--role=keys", "create", "--name", "ops", "--scopes", "payouts:read,events:read"],
      env,
    );
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toHaveLength(1);
    const key = JSON.parse(created.stdout[0] as string);
    expect(key.scopes).toEqual(["payouts:read", "events:read"]);
    expect(created.stderr.some((line) => line.includes("api key created"))).toBe(true);
    for (const line of created.stderr) expect(line).not.toContain(key.secret.slice(-43));

    const revoked = await runMain(["--role", "keys", "revoke", key.id], env);
    expect(revoked.exitCode).toBe(0);
    expect(JSON.parse(revoked.stdout[0] as string).revoked_at).not.toBeNull();

    const wrong = await runMain(["--role=keys", "create"], env);
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stdout).toHaveLength(1);
    expect(JSON.parse(wrong.stdout[0] as string).error.message).toContain("name");

    const noDatabase = await runMain(["--role=keys", "list"], { DATABASE_URL: "" });
    expect(noDatabase.exitCode).toBe(2);
    expect(noDatabase.stdout).toEqual([]);
  },
  { timeout: 60_000 },
);
