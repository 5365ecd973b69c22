import { join } from "node:path";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { migratePglite } from "../db/migrate";
import { DEV_KEY_FILE, ensureDevKey } from "../keys/dev-key";
import type { Logger } from "../lib/log";
import { recoverInProcess } from "../payouts/processing/outbox";
import { brokerOrMemory, embeddedOrPostgres, requireEmbeddable, requireSecretKeys, startProcessing } from "./adapters";
import { databaseComponent, httpComponent, keysComponent, processingComponents } from "./components";
import { migrateOrExit } from "./migrate";
import { type Component, resource, run } from "./run";

/**
 * The embedded default's development key (docs: access-control, "The first key"): made on the
 * first start, its secret printed once, plainly, to stderr (the console of `bun run start`), never
 * in a log line; later starts name only the file. Never with DATABASE_URL: keys are then the keys
 * role's to make.
 */
async function announceDevKey(config: Config, database: Database, log: Logger): Promise<void> {
  const key = await ensureDevKey({ db: database.db, dataDir: config.dataDir, log });
  if (!key) return;
  const file = join(config.dataDir, DEV_KEY_FILE);
  if (key.created) {
    process.stderr.write(
      `\nDevelopment API key (every scope), shown once and kept in ${file}:\n  ${key.token}\nSend it as: Authorization: Bearer $(cat ${file})\n\n`,
    );
  }
  log.info(key.created ? "development API key created" : "development API key in use", { file });
}

/**
 * `--role=all`, in start order: the database (PostgreSQL, or the embedded PGlite) and its
 * migrations; the queue (RabbitMQ, or in-process); then what the worker role runs too (see
 * processingComponents), with the in-process consumer as its processing; the api last. SIGTERM
 * stops them in reverse: the api stops accepting and answers what is in flight first, so that
 * every payout it created is handed to the outbox, which publishes it before the queue closes.
 */
function allComponents(config: Config, log: Logger): Component[] {
  const database = databaseComponent("database", () => embeddedOrPostgres(config));
  const migrations = {
    name: "migrations",
    start: () => (config.databaseUrl ? migrateOrExit(config, log) : migratePglite(database.value.db)),
    stop() {},
  };
  const devKey = { name: "development key", start: () => announceDevKey(config, database.value, log), stop() {} };
  const queue = resource(
    "queue",
    async () => {
      const queue = brokerOrMemory(config, log);
      // The in-process queue forgot everything with the last process: what it had not finished is
      // published to it again before anything consumes.
      if (queue.inProcess) await recoverInProcess(database.value.db, queue.publisher, log);
      return queue;
    },
    (queue) => queue.publisher.close(),
  );
  const processing = {
    name: "processing",
    start: () => startProcessing(config, database.value, queue.value.consumer, log),
    stop: () => queue.value.consumer.close(),
  };
  const publisher = () => queue.value.publisher;
  const { outbox, secrets, components } = processingComponents({
    config,
    log,
    database,
    publisher,
    processing,
    payoutsInFlight: () => queue.current?.consumer.inFlight ?? 0,
  });
  const keys = keysComponent(config, log, database);
  return [
    database,
    migrations,
    ...(config.databaseUrl ? [] : [devKey]),
    queue,
    ...components,
    keys,
    httpComponent(config, log, database, publisher, outbox, keys, secrets),
  ];
}

export async function allRole(config: Config, log: Logger): Promise<void> {
  requireEmbeddable(config);
  requireSecretKeys(config, "all");
  await run(allComponents(config, log), log);
  log.info("running every role in one process", {
    database: config.databaseUrl ? "postgresql" : `pglite (${config.dataDir})`,
    queue: config.amqpUrl ? "rabbitmq" : "in-process",
  });
}
