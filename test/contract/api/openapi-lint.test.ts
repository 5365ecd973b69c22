// The served OpenAPI document passes Redocly CLI's recommended rules (redocly.yaml names the
// deliberate exceptions): what /swagger/json returns is linted, not a copy kept beside the code.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testApi } from "../../kit/api";
import { testDatabase } from "../../kit/db";

const ROOT = join(import.meta.dir, "..", "..", "..");
const database = testDatabase(1);
const dir = mkdtempSync(join(tmpdir(), "payouts-openapi-"));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await database.close();
});

test("the document at /swagger/json has no error and no warning under redocly.yaml", async () => {
  const served = await testApi(database).request("GET", "/swagger/json");
  expect(served.status).toBe(200);
  const file = join(dir, "openapi.json");
  await Bun.write(file, served.text);
  const lint = Bun.spawnSync(
    [
      join(ROOT, "node_modules", ".bin", "redocly"),
      "lint",
      file,
      "--config",
      join(ROOT, "redocly.yaml"),
      "--format=json",
    ],
    {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const report = JSON.parse(lint.stdout.toString()) as {
    totals: { errors: number; warnings: number };
    problems: { ruleId: string; message: string }[];
  };
  expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
  expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  expect(lint.exitCode).toBe(0);
}, 60_000);

test("the document names its servers and licence and the bearer scheme its operations name", async () => {
  const { body } = await testApi(database).request("GET", "/swagger/json");
  expect(body.servers).toEqual([{ url: "/", description: "this service" }]);
  expect(body.info.license).toEqual({ name: "Proprietary", identifier: "LicenseRef-Proprietary" });
  expect(body.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
});
