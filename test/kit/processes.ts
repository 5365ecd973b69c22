// The program as operators run it: `bun src/main.ts --role=...` in a child process, on a free port.
import { createServer } from "node:net";
import { join } from "node:path";
import type { Subprocess } from "bun";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const spawned = new Set<Subprocess>();

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a role with the run's DATABASE_URL and AMQP_URL plus `env`; output goes to the test's. */
export function spawnRole(role: "api" | "worker", env: Record<string, string>): Subprocess {
  const child = Bun.spawn(["bun", MAIN, `--role=${role}`], {
    env: { ...process.env, HOST: "127.0.0.1", ...env },
    stdout: "inherit",
    stderr: "inherit",
  });
  spawned.add(child);
  void child.exited.then(() => spawned.delete(child));
  return child;
}

/** Runs `bun src/main.ts args` to its end with the run's URLs plus `env`; stdout and stderr as lines. */
export async function runMain(args: string[], env: Record<string, string>) {
  const child = Bun.spawn(["bun", MAIN, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [exitCode, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  const lines = (text: string) => text.split("\n").filter(Boolean);
  return { exitCode, stdout: lines(stdout), stderr: lines(stderr) };
}

/** For afterAll: SIGTERM every child still running, then SIGKILL what has not exited in 10 s. */
export async function killSpawned(): Promise<void> {
  await Promise.all(
    [...spawned].map(async (child) => {
      child.kill("SIGTERM");
      const exited = await Promise.race([child.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
      if (!exited) child.kill("SIGKILL");
      await child.exited;
    }),
  );
}

/** A sample's value in a Prometheus text exposition, 0 when the series is absent. */
export function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
