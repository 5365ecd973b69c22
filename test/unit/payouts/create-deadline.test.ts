// CREATE_DEADLINE_MS: how long a create may take to commit, and the answer bound that follows.
import { expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../../src/config";
import { createAnswerBoundMs } from "../../../src/payouts/create";

test("CREATE_DEADLINE_MS defaults to 2000 and accepts 200 to 60000", () => {
  expect(loadConfig({}).createDeadlineMs).toBe(2000);
  expect(loadConfig({ CREATE_DEADLINE_MS: "200" }).createDeadlineMs).toBe(200);
  expect(loadConfig({ CREATE_DEADLINE_MS: "60000" }).createDeadlineMs).toBe(60_000);
});

for (const wrong of ["199", "60001", "1.5", "2s", "-1"]) {
  test(`CREATE_DEADLINE_MS=${wrong} stops the program with a message naming it`, () => {
    expect(() => loadConfig({ CREATE_DEADLINE_MS: wrong })).toThrow(
      new ConfigError(`CREATE_DEADLINE_MS must be a whole number from 200 to 60000, got "${wrong}"`),
    );
  });
}

test("a create is answered within its deadline plus 1.2 s: the settle time, one lookup and scheduling", () => {
  expect(createAnswerBoundMs(2000)).toBe(3200);
  expect(createAnswerBoundMs(800)).toBe(2000);
});
