import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "../db/client";
import { apiKeys } from "../db/schema";
import { systemClock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { BOOTSTRAP, SCOPES } from "./model";
import { keyService } from "./service";

export const DEV_KEY_FILE = "dev-api-key";

function readKeyFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The embedded default's development key (docs: access-control, "The first key"). On an empty
 * key table: a key with every scope, its secret written to `$DATA_DIR/dev-api-key` (one line,
 * mode 0600) and returned with `created: true`, for the caller to print once. Later starts return
 * the file's key while it still authenticates. When the table holds keys and the file holds none
 * of them, nothing is made (undefined): keys are then the keys role's to make.
 *
 * For the embedded default only: with DATABASE_URL set, the composition root never calls this.
 */
export async function ensureDevKey({
  db,
  dataDir,
  log,
}: {
  db: Db;
  dataDir: string;
  log: Logger;
}): Promise<{ token: string; created: boolean } | undefined> {
  const path = join(dataDir, DEV_KEY_FILE);
  const keys = keyService({ db, clock: systemClock, log }, { cacheTtlMs: 0 });
  const saved = readKeyFile(path);
  if (saved && (await keys.check(saved))) return { token: saved, created: false };
  const [any] = await db.select({ id: apiKeys.id }).from(apiKeys).limit(1);
  if (any) {
    log.warn("no development key made: the key table is not empty; make keys with --role=keys", { file: path });
    return undefined;
  }
  const { secret: token } = await keys.create({ name: "development", scopes: [...SCOPES] }, BOOTSTRAP);
  mkdirSync(dataDir, { recursive: true });
  // Written whole under another name, then renamed: a crash never leaves half a key in the file,
  // and the mode is the file's from its first byte (chmod too: a partial file left by a crash keeps its own mode).
  const partial = `${path}.partial`;
  writeFileSync(partial, `${token}\n`, { mode: 0o600 });
  chmodSync(partial, 0o600);
  renameSync(partial, path);
  return { token, created: true };
}
