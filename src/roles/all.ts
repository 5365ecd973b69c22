import type { Config } from "../config";
import { migratePglite } from "../db/migrate";
import type { Logger } from "../lib/log";
import { recoverInProcess } from "../payouts/processing/outbox";
import { brokerOrMemory, embeddedOrPostgres, requireEmbeddable, startProcessing } from "./adapters";
import { databaseComponent, httpComponent, processingComponents } from "./components";
import { migrateOrExit } from "./migrate";
import { type Component, resource, run } from "./run";

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
  const { outbox, components } = processingComponents({
    config,
    log,
    database,
    publisher,
    processing,
    payoutsInFlight: () => queue.current?.consumer.inFlight ?? 0,
  });
  return [database, migrations, queue, ...components, httpComponent(config, log, database, publisher, outbox)];
}

export async function allRole(config: Config, log: Logger): Promise<void> {
  requireEmbeddable(config);
  await run(allComponents(config, log), log);
  log.info("running every role in one process", {
    database: config.databaseUrl ? "postgresql" : `pglite (${config.dataDir})`,
    queue: config.amqpUrl ? "rabbitmq" : "in-process",
  });
}
