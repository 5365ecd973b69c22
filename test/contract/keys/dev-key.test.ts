// The embedded default's development key, on PGlite (where it is made) and on PostgreSQL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openPglite } from "../../../src/db/client";
import { migratePglite } from "../../../src/db/migrate";
import { ensureDevKey } from "../../../src/keys/dev-key";
import { BOOTSTRAP, SCOPES } from "../../../src/keys/model";
import { keyService } from "../../../src/keys/service";
import { systemClock } from "../../../src/lib/clock";
import { createLogger } from "../../../src/lib/log";

const lines: string[] = [];
const log = createLogger("debug", "json", {}, (line) => lines.push(line));
const dataDir = mkdtempSync(join(tmpdir(), "payouts-dev-key-"));
let database: Database;

beforeAll(async () => {
  database = await openPglite(join(dataDir, "pglite"));
  await migratePglite(database.db);
}, 60_000);

afterAll(async () => {
  await database.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("ensureDevKey", () => {
  test("on an empty key table: a key with every scope, in $DATA_DIR/dev-api-key (one line, 0600); then reused", async () => {
    const first = await ensureDevKey({ db: database.db, dataDir, log });
    expect(first?.created).toBe(true);
    const path = join(dataDir, "dev-api-key");
    expect(readFileSync(path, "utf8")).toBe(`${first?.token}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const keys = keyService({ db: database.db, clock: systemClock, log }, { cacheTtlMs: 0 });
    const caller = await keys.check(first?.token as string);
    expect(caller?.scopes).toEqual([...SCOPES]);

    const again = await ensureDevKey({ db: database.db, dataDir, log });
    expect(again).toEqual({ token: first?.token as string, created: false });
    for (const line of lines) expect(line).not.toContain((first?.token as string).slice(-43));
  });

  test("keys in the table and none of them in the file: nothing is made", async () => {
    const path = join(dataDir, "dev-api-key");
    const keys = keyService({ db: database.db, clock: systemClock, log }, { cacheTtlMs: 0 });
    const token = readFileSync(path, "utf8").trim();
    const caller = await keys.check(token);
    await keys.revoke(caller?.id as string, BOOTSTRAP);
    expect(await ensureDevKey({ db: database.db, dataDir, log })).toBeUndefined();
    writeFileSync(path, "garbage\n");
    expect(await ensureDevKey({ db: database.db, dataDir, log })).toBeUndefined();
    expect(readFileSync(path, "utf8")).toBe("garbage\n");
    expect(lines.some((line) => line.includes("no development key made"))).toBe(true);
  });
});
