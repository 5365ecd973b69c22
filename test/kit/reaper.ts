// What a test run makes on the shared services (a database, a vhost) is dropped when the run ends,
// however it ends: passed, failed, a set-up that threw half-way, Ctrl-C, a CI timeout's kill.
// `bun test` has no hook that runs after the last file unless a preload registers it, and the run
// must not need a preload (the unit tier has none), so a small child process does it: it is told
// each name before that thing is made, and drops them all once its stdin closes, which the kernel
// does when the test process exits for any reason.
import type { FileSink } from "bun";

export type Made = { database: string } | { vhost: string };

const adminUrl = () => process.env.TEST_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** `rabbitmqctl -q args`: its stdout; its stderr in the error when it fails. */
export async function rabbitmqctlOutput(...args: string[]): Promise<string> {
  const child = Bun.spawn(["rabbitmqctl", "-q", ...args], { stdout: "pipe", stderr: "pipe" });
  const [exitCode, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  if (exitCode !== 0) throw new Error(`rabbitmqctl ${args.join(" ")} exited ${exitCode}: ${stderr.trim()}`);
  return stdout;
}

export const rabbitmqctl = async (...args: string[]): Promise<void> => void (await rabbitmqctlOutput(...args));

/** Drops what was made; what is already gone is not an error. */
export async function drop(made: Made): Promise<void> {
  if ("database" in made) {
    const { default: postgres } = await import("postgres");
    const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${made.database}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  } else {
    await rabbitmqctl("delete_vhost", made.vhost).catch((error: Error) => {
      if (!/not.found|does not exist/i.test(error.message)) throw error;
    });
  }
}

let reaper: FileSink | undefined;

/** Hands `made` to the reaper before it is made, so that even a crash right after leaves nothing. */
export function dropAtExit(made: Made): void {
  if (!reaper) {
    const child = Bun.spawn([process.execPath, import.meta.path], {
      stdin: "pipe",
      stdout: "inherit",
      stderr: "inherit",
    });
    // The test process must not wait for its reaper, which waits for it.
    child.unref();
    reaper = child.stdin;
  }
  reaper.write(`${JSON.stringify(made)}\n`);
  reaper.flush();
}

if (import.meta.main) {
  // Ctrl-C signals the whole process group: the reaper outlives the run to clean up after it.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => {});
  const lines = (await new Response(Bun.stdin.stream()).text()).split("\n").filter(Boolean);
  for (const line of lines) {
    const made = JSON.parse(line) as Made;
    await drop(made).catch((error: Error) => console.error(`test run clean-up: ${line} not dropped: ${error.message}`));
  }
  process.exit(0);
}
