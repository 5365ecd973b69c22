import { expect, test } from "bun:test";
import { containerArgs } from "../../../src/http/healthcheck";

test("the container's role is read from PID 1's command line", async () => {
  const file = `${process.env.TMPDIR ?? "/tmp"}/payouts-cmdline-${process.pid}`;
  await Bun.write(file, ["/sbin/docker-init", "--", "/app/payouts", "--role=worker", ""].join("\0"));
  expect(containerArgs(file)).toContain("--role=worker");
  expect(containerArgs(`${file}-absent`)).toEqual([]);
});
