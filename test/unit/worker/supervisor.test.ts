import { expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorkerThreads } from "../../../src/roles/thread-supervisor";
import { quiet as log } from "../../kit/log";
import { eventually } from "../../kit/wait";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;

test("a thread that dies is started again, and stop() ends the restarts", async () => {
  // The fixture's file is named after this process (its threads share the pid).
  const file = join(tmpdir(), `payouts-crashing-thread-${process.pid}.log`);
  rmSync(file, { force: true });
  const starts = () => {
    try {
      return readFileSync(file, "utf8").split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  const threads = startWorkerThreads({ log }, { count: 1, entry: fixture("crashing-thread.ts") });
  // One start, then a restart a second after each death.
  await eventually(async () => starts() >= 3, 10_000);
  await threads.stop();
  // No thread runs and no restart waits: nothing can start any more.
  expect(threads.size).toBe(0);
  expect(threads.pendingRestarts).toBe(0);
  rmSync(file, { force: true });
}, 20_000);

test("stop() asks every thread to drain and waits for each answer", async () => {
  const threads = startWorkerThreads({ log }, { count: 3, entry: fixture("stopping-thread.ts") });
  await eventually(async () => threads.size === 3);
  await threads.stop();
  await eventually(async () => threads.size === 0, 2000);
});
