import { expect, test } from "bun:test";
import { isDatabaseUnavailable } from "../../../src/db/errors";
import { batched } from "../../../src/lib/batched";

const OPTIONS = { maxSize: 100, maxInFlight: 1, failsEveryInput: isDatabaseUnavailable };

/** A `run` that records each batch it was given and answers after `delayMs`. */
function recorder(delayMs = 5, fail?: (inputs: number[]) => boolean) {
  const batches: number[][] = [];
  const run = async (inputs: number[]) => {
    batches.push(inputs);
    await Bun.sleep(delayMs);
    if (fail?.(inputs)) throw new Error(`batch ${inputs.join(",")} failed`);
    return inputs.map((n) => n * 10);
  };
  return { batches, run };
}

test("an idle call runs at once, alone", async () => {
  const { batches, run } = recorder();
  const call = batched(run, OPTIONS);
  expect(await call(1)).toBe(10);
  expect(batches).toEqual([[1]]);
});

test("calls that arrive while a batch runs share the next one, each getting its own answer", async () => {
  const { batches, run } = recorder();
  const call = batched(run, OPTIONS);
  const first = call(1);
  await Bun.sleep(1);
  const rest = [2, 3, 4, 5].map(call);
  expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40, 50]);
  expect(batches).toEqual([[1], [2, 3, 4, 5]]);
});

test("a batch never exceeds maxSize, and at most maxInFlight run at once", async () => {
  let running = 0;
  let most = 0;
  const sizes: number[] = [];
  const call = batched(
    async (inputs: number[]) => {
      running++;
      most = Math.max(most, running);
      sizes.push(inputs.length);
      await Bun.sleep(5);
      running--;
      return inputs;
    },
    { ...OPTIONS, maxSize: 3, maxInFlight: 2 },
  );
  const inputs = Array.from({ length: 20 }, (_, i) => i);
  expect(await Promise.all(inputs.map(call))).toEqual(inputs);
  expect(Math.max(...sizes)).toBe(3);
  expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
  expect(most).toBe(2);
});

test("one bad input fails only its own call: the others are run again on their own", async () => {
  const { batches, run } = recorder(1, (inputs) => inputs.includes(3));
  const call = batched(run, OPTIONS);
  const results = await Promise.allSettled([1, 2, 3, 4].map(call));
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
  expect(
    results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<number>).value),
  ).toEqual([10, 20, 40]);
  expect(batches).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]]);
});

test("a batch that fails for want of the database fails every input at once, without running each alone", async () => {
  const batches: number[][] = [];
  const call = batched(async (inputs: number[]) => {
    batches.push(inputs);
    await Bun.sleep(5);
    throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
  }, OPTIONS);
  const first = call(1).catch((e: Error) => e.message);
  await Bun.sleep(1);
  const rest = [2, 3, 4].map((n) => call(n).catch((e: Error) => e.message));
  expect(await Promise.all([first, ...rest])).toEqual([
    "connection reset",
    "connection reset",
    "connection reset",
    "connection reset",
  ]);
  expect(batches).toEqual([[1], [2, 3, 4]]);
});

test("a run that returns a different number of outputs than inputs is a bug: every input fails", async () => {
  const call = batched(async (inputs: number[]) => inputs.slice(1), OPTIONS);
  await expect(call(1)).rejects.toThrow("a batch of 1 returned 0 outputs");
});
