import type { Config } from "../config";
import { runKeysCommand } from "../keys/cli";
import { createLogger, type Logger } from "../lib/log";
import { postgres, requireUrls } from "./adapters";
import { useLogger } from "./lifecycle";

/**
 * `--role=keys create|list|revoke`: a task for the first administrator and for automation. Its
 * stdout holds exactly one JSON object (the key, with its secret on create), so every log line
 * goes to stderr, and no line holds a secret.
 */
export async function keysRole(config: Config, _log: Logger): Promise<void> {
  requireUrls(config, "keys", ["DATABASE_URL"]);
  const log = createLogger(config.logLevel, config.logFormat, { role: "keys" }, (line) => process.stderr.write(line));
  useLogger(log);
  const database = postgres(config, 1, "payouts-keys");
  const stdout = (text: string) => process.stdout.write(text);
  const code = await runKeysCommand(Bun.argv.slice(2), { db: database.db, stdout, log });
  await database.close();
  process.exit(code);
}
