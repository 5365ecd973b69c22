import { afterEach, beforeEach, expect, test } from "bun:test";
import { createLogger } from "../../../src/lib/log";
import { DeadlineExceeded, deadline, every } from "../../../src/lib/timers";

/** A promise settled from outside: a pass or an answer that ends when the test says so. */
function deferred<T = void>() {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves at the n-th call of the returned function: the event a test waits for. */
function counter(n: number) {
  let calls = 0;
  const reached = deferred();
  return {
    reached: reached.promise,
    count: () => {
      calls++;
      if (calls === n) reached.resolve();
      return calls;
    },
  };
}

// Every timer set and not yet fired or cleared: after stop(), a loop must leave none behind.
const pending = new Set<unknown>();
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
beforeEach(() => {
  pending.clear();
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    const timer = realSetTimeout(() => {
      pending.delete(timer);
      fn();
    }, ms);
    pending.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer: Timer | undefined) => {
    pending.delete(timer);
    realClearTimeout(timer);
  }) as typeof clearTimeout;
});
afterEach(() => {
  globalThis.setTimeout = realSetTimeout;
  globalThis.clearTimeout = realClearTimeout;
});

function capture() {
  const lines: { level: string; msg: string; err?: { message: string } }[] = [];
  return { lines, log: createLogger("debug", "json", {}, (line) => lines.push(JSON.parse(line))) };
}

test("deadline answers with the promise's value when it settles first, and leaves no timer behind", async () => {
  expect(await deadline(Promise.resolve(42), 1000)).toBe(42);
  expect(pending.size).toBe(0);
});

test("deadline passes the promise's own rejection on", async () => {
  await expect(deadline(Promise.reject(new Error("refused")), 1000)).rejects.toThrow("refused");
  expect(pending.size).toBe(0);
});

test("deadline rejects with DeadlineExceeded once the time is up, or with the caller's error", async () => {
  const never = new Promise<never>(() => {});
  const late = deadline(never, 5);
  await expect(late).rejects.toBeInstanceOf(DeadlineExceeded);
  await expect(late).rejects.toThrow("no answer within 5 ms");
  class Unavailable extends Error {}
  await expect(deadline(never, 5, (ms) => new Unavailable(`silent for ${ms} ms`))).rejects.toThrow(
    new Unavailable("silent for 5 ms"),
  );
});

test("every runs its pass again and again, never two at once", async () => {
  let running = 0;
  let most = 0;
  const passes = counter(5);
  const loop = every(
    0,
    async () => {
      running++;
      most = Math.max(most, running);
      passes.count();
      await Bun.sleep(2);
      running--;
    },
    { name: "test loop" },
  );
  await passes.reached;
  await loop.stop();
  expect(most).toBe(1);
  expect(running).toBe(0);
});

test("stop() aborts the pass's signal and resolves only after the pass in flight ended, with no pass left scheduled", async () => {
  const inPass = deferred();
  const release = deferred();
  const events: string[] = [];
  let signal: AbortSignal | undefined;
  const loop = every(
    0,
    async (stopping) => {
      signal = stopping;
      inPass.resolve();
      await release.promise;
      events.push(`pass ended, stopping=${stopping.aborted}`);
    },
    { name: "test loop" },
  );
  await inPass.promise;
  const stopped = loop.stop().then(() => events.push("stopped"));
  expect(signal?.aborted).toBe(true);
  release.resolve();
  await stopped;
  expect(events).toEqual(["pass ended, stopping=true", "stopped"]);
  expect(pending.size).toBe(0);
});

test("stop() between passes cancels the next one and resolves at once", async () => {
  const first = counter(1);
  const loop = every(
    60_000,
    async () => {
      first.count();
    },
    { name: "test loop" },
  );
  await first.reached;
  // The next pass is a minute away: stop() does not wait for it, and clears its timer.
  await loop.stop();
  expect(pending.size).toBe(0);
});

test("a pass that throws is logged with the loop's name, and the loop goes on", async () => {
  const { lines, log } = capture();
  const passes = counter(3);
  const loop = every(
    0,
    async () => {
      if (passes.count() === 1) throw new Error("database down");
    },
    { name: "relay pass", log },
  );
  await passes.reached;
  await loop.stop();
  expect(lines).toEqual([
    expect.objectContaining({
      level: "warn",
      msg: "relay pass failed; will try again",
      err: expect.objectContaining({ message: "database down" }),
    }),
  ]);
});

test("the first pass waits firstAfterMs when told to", async () => {
  const first = deferred<number>();
  const started = performance.now();
  const loop = every(0, async () => first.resolve(performance.now() - started), { name: "probe", firstAfterMs: 30 });
  expect(await first.promise).toBeGreaterThanOrEqual(25);
  await loop.stop();
});

test("a pass that returns a delay sets when the next pass comes, instead of the loop's interval", async () => {
  const passes = counter(3);
  // An interval of a minute: only the returned 0 brings the second and third passes now.
  const loop = every(60_000, async () => (passes.count() < 3 ? 0 : undefined), { name: "test loop" });
  await passes.reached;
  await loop.stop();
  expect(pending.size).toBe(0);
});

test("wake() runs the next pass now between passes, and right after the pass in flight during one", async () => {
  const firstDone = deferred();
  const inSecond = deferred();
  const releaseSecond = deferred();
  const third = counter(3);
  const loop = every(
    60_000,
    async () => {
      const n = third.count();
      if (n === 1) queueMicrotask(() => firstDone.resolve());
      if (n === 2) {
        inSecond.resolve();
        await releaseSecond.promise;
      }
    },
    { name: "test loop" },
  );
  // Between passes: the next is a minute away until woken.
  await firstDone.promise;
  await Promise.resolve();
  loop.wake();
  await inSecond.promise;
  // During a pass: the one after it comes at once when this one ends.
  loop.wake();
  releaseSecond.resolve();
  await third.reached;
  await loop.stop();
  expect(pending.size).toBe(0);
});
