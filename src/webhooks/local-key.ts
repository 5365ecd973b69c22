import { randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The embedded default's key for webhook signing secrets, under DATA_DIR. */
const LOCAL_KEY_FILE = "webhook-secret-key";

/**
 * The embedded default's WEBHOOK_SECRET_KEYS (`bun run start` without DATABASE_URL): made on the
 * first start as `local:<base64 of 32 random bytes>`, one line, file mode 0600, and read on every
 * later one, so the secrets sealed with it stay readable. It sits next to the database it protects,
 * which is enough for a development machine only: with DATABASE_URL the key must come from the
 * environment, never from a file beside the data.
 *
 * Returns the file's content and its path (for the error that names it when the content is wrong).
 */
export function localSecretKey(dataDir: string): { keys: string; path: string } {
  const path = join(dataDir, LOCAL_KEY_FILE);
  mkdirSync(dataDir, { recursive: true });
  try {
    return { keys: readFileSync(path, "utf8").trim(), path };
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOENT") throw err;
  }
  // Written whole under another name, then linked into place: a crash never leaves half a key, and
  // of two processes starting at once on the same directory only one key wins (link fails on the other).
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, `local:${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  chmodSync(partial, 0o600);
  try {
    linkSync(partial, path);
  } catch (err) {
    if ((err as { code?: string }).code !== "EEXIST") throw err;
  } finally {
    rmSync(partial, { force: true });
  }
  return { keys: readFileSync(path, "utf8").trim(), path };
}
