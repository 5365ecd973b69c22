// test/kit's set-up as a run sees it: one database and one vhost for the whole run, both dropped
// when it ends, and when the vhost cannot be made, a clear error and nothing left behind.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { rabbitmqctlOutput } from "../../kit/reaper";
import { eventually } from "../../kit/wait";

const FIXTURES = join(import.meta.dir, "fixtures");
const admin = postgres(process.env.TEST_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres", {
  max: 1,
  onnotice: () => {},
});
const dir = mkdtempSync(join(tmpdir(), "payouts-kit-"));
afterAll(async () => {
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

/** `bun test` of the fixtures, in a run of its own. */
function run(files: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn([process.execPath, "test", ...files.map((f) => join(FIXTURES, f))], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]).then(
    ([out, err]) => out + err,
  );
  return { child, output };
}

const databasesOf = async (pid: number) =>
  (await admin`SELECT datname FROM pg_database WHERE datname LIKE ${`payouts_test_${pid}_%`}`).map((r) => r.datname);
const vhostsOf = async (pid: number) =>
  (await rabbitmqctlOutput("list_vhosts", "name")).split("\n").filter((v) => v.startsWith(`payouts_test_${pid}_`));

test("a run of two files makes one database and one vhost, and drops both once it ended", async () => {
  const { child, output } = run(["services.ts", "services-again.ts"]);
  expect(await child.exited).toBe(0);
  const made = new Set((await output).split("\n").filter((line) => line.startsWith("services: ")));
  expect(made.size).toBe(1);
  await eventually(async () => (await databasesOf(child.pid)).length === 0 && (await vhostsOf(child.pid)).length === 0);
}, 60_000);

test("a vhost that fails half-way: the error says so, and neither it nor the database made before is left", async () => {
  // rabbitmqctl as the run finds it on PATH: set_permissions fails once the test saw the database.
  const go = join(dir, "go");
  const real = Bun.which("rabbitmqctl") as string;
  await Bun.write(
    join(dir, "rabbitmqctl"),
    `#!/bin/sh\ncase " $* " in *" set_permissions "*)\n  while [ ! -f "${go}" ]; do sleep 0.05; done\n  echo "permission refused (test)" >&2; exit 1;;\nesac\nexec "${real}" "$@"\n`,
  );
  chmodSync(join(dir, "rabbitmqctl"), 0o755);
  const { child, output } = run(["services.ts"], { PATH: `${dir}:${process.env.PATH}` });
  await eventually(async () => (await databasesOf(child.pid)).length === 1, 30_000);
  await Bun.write(go, "");
  expect(await child.exited).not.toBe(0);
  expect(await output).toContain("the tests could not make their RabbitMQ vhost");
  expect(await output).toContain("permission refused (test)");
  await eventually(async () => (await databasesOf(child.pid)).length === 0 && (await vhostsOf(child.pid)).length === 0);
}, 60_000);
