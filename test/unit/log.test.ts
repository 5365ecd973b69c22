import { expect, test } from "bun:test";
import { createLogger } from "../../src/lib/log";

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger("info", "json", { role: "test" }, (line) => lines.push(line)) };
}

test("a failed query's parameters (recipient details, amounts) never reach the log; its statement and cause do", () => {
  const { lines, log } = capture();
  const cause = Object.assign(new Error('new row for relation "payouts" violates check constraint'), { code: "23514" });
  const error = new Error("Failed query: insert into payouts values ($1, $2)\nparams: 40817810099910004312,1500.00", {
    cause,
  });
  log.error("unhandled error", { err: error });

  expect(lines).toHaveLength(1);
  expect(lines[0]).not.toContain("40817810099910004312");
  expect(lines[0]).not.toContain("1500.00");
  const entry = JSON.parse(lines[0] as string);
  expect(entry).toMatchObject({
    level: "error",
    msg: "unhandled error",
    role: "test",
    err: {
      message: "Failed query: insert into payouts values ($1, $2)",
      cause: { message: 'new row for relation "payouts" violates check constraint' },
    },
  });
  expect(entry.err.stack).toContain("Failed query: insert into payouts values ($1, $2)");
});

test("lines below the level are not written", () => {
  const lines: string[] = [];
  const log = createLogger("warn", "json", {}, (line) => lines.push(line));
  log.info("quiet");
  log.warn("loud");
  expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["loud"]);
});
