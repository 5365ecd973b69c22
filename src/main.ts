import { createApp } from "./api/app";
import { type Config, ConfigError, loadConfig, ROLES, type Role } from "./config";
import { connectPostgres, type Database, openPglite } from "./db/client";
import { migratePglite, migratePostgres } from "./db/migrate";
import { simulatedGateway } from "./gateway/simulated";
import { createLogger, type Logger } from "./log";
import { memoryQueue } from "./queue/memory";
import { createOutbox, recoverInProcess } from "./queue/outbox";
import type { Consumer, Publisher } from "./queue/port";
import { rabbitConsumer, rabbitPublisher } from "./queue/rabbitmq";
import { createProcessor, retryDelays } from "./worker/processor";
import { startWorkerThreads } from "./worker/supervisor";

/** `--role=api` or `--role api`; `all` when absent. */
export function parseRole(argv: string[]): Role {
  const index = argv.findIndex((a) => a === "--role" || a.startsWith("--role="));
  if (index === -1) return "all";
  const arg = argv[index] as string;
  const value = arg.includes("=") ? arg.slice("--role=".length) : argv[index + 1];
  if (!ROLES.includes(value as Role)) {
    throw new ConfigError(`--role must be one of ${ROLES.join(", ")}, got "${value ?? ""}"`);
  }
  return value as Role;
}

function require(config: Config, role: Role, names: ("DATABASE_URL" | "AMQP_URL")[]) {
  const missing = names.filter((n) => (n === "DATABASE_URL" ? !config.databaseUrl : !config.amqpUrl));
  if (missing.length > 0) {
    throw new ConfigError(
      `--role=${role} needs ${missing.join(" and ")} (the embedded database and in-process queue exist only in --role=all)`,
    );
  }
}

const processorOptions = (config: Config) => ({
  maxAttempts: config.maxAttempts,
  retryBaseDelayMs: config.retryBaseDelayMs,
  taskTimeLimitMs: config.taskTimeLimitMs,
});

const outboxOptions = (config: Config) => ({
  intervalMs: config.relayIntervalMs,
  graceMs: 5000,
  // Longer than a gateway call plus the longest retry wait: a live holder is never taken over.
  stuckAfterMs: config.taskTimeLimitMs + Math.max(0, ...retryDelays(processorOptions(config))) + 60_000,
});

/** Runs until SIGTERM or SIGINT, then calls `stop` and exits 0. */
function onShutdown(log: Logger, stop: () => Promise<void>) {
  let stopping = false;
  const handler = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    try {
      await stop();
      log.info("stopped");
      process.exit(0);
    } catch (err) {
      log.error("shutdown failed", { err });
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void handler("SIGTERM"));
  process.on("SIGINT", () => void handler("SIGINT"));
}

function serveApi(config: Config, database: Database, publisher: Publisher, log: Logger) {
  const outbox = createOutbox(database.db, publisher, outboxOptions(config), log.child({ component: "outbox" }));
  const app = createApp({
    database,
    log,
    onCreated: (id) => outbox.handOff(id),
    brokerConnected: () => publisher.connected,
  });
  app.listen({ hostname: config.host, port: config.port });
  outbox.start();
  log.info("api listening", { host: config.host, port: app.server?.port });
  return {
    outbox,
    async stop() {
      await app.stop();
      await outbox.stop();
    },
  };
}

async function main() {
  const role = parseRole(Bun.argv.slice(2));
  const config = loadConfig();
  const log = createLogger(config.logLevel, config.logFormat, { role });

  switch (role) {
    case "migrate": {
      require(config, role, ["DATABASE_URL"]);
      await migratePostgres(config.databaseUrl as string);
      log.info("migrations applied");
      process.exit(0);
      break;
    }
    case "api": {
      require(config, role, ["DATABASE_URL", "AMQP_URL"]);
      const database = connectPostgres(config.databaseUrl as string, config.dbPoolSize, "payouts-api");
      const publisher = rabbitPublisher(config.amqpUrl as string, retryDelays(processorOptions(config)), log);
      const api = serveApi(config, database, publisher, log);
      onShutdown(log, async () => {
        await api.stop();
        await publisher.close();
        await database.close();
      });
      break;
    }
    case "worker": {
      require(config, role, ["DATABASE_URL", "AMQP_URL"]);
      // The worker role relays too, so payouts whose hand-off failed are published even while
      // no api replica runs.
      const database = connectPostgres(config.databaseUrl as string, 2, "payouts-worker-relay");
      const publisher = rabbitPublisher(config.amqpUrl as string, retryDelays(processorOptions(config)), log);
      const outbox = createOutbox(database.db, publisher, outboxOptions(config), log.child({ component: "outbox" }));
      outbox.start();
      const threads = startWorkerThreads(config.workerThreads, log);
      onShutdown(log, async () => {
        await threads.stop();
        await outbox.stop();
        await publisher.close();
        await database.close();
      });
      break;
    }
    case "all": {
      const database = config.databaseUrl
        ? connectPostgres(config.databaseUrl, config.dbPoolSize, "payouts")
        : await openPglite(config.dataDir);
      if (config.databaseUrl) await migratePostgres(config.databaseUrl);
      else await migratePglite(database.db);

      let publisher: Publisher;
      let consumer: Consumer;
      const delays = retryDelays(processorOptions(config));
      if (config.amqpUrl) {
        publisher = rabbitPublisher(config.amqpUrl, delays, log);
        consumer = rabbitConsumer(
          config.amqpUrl,
          { concurrency: config.workerConcurrency, retryDelays: delays, drainTimeoutMs: config.taskTimeLimitMs },
          log,
        );
      } else {
        ({ publisher, consumer } = memoryQueue(config.workerConcurrency, log));
        await recoverInProcess(database.db, publisher, log);
      }
      const gateway = simulatedGateway(database.db, {
        latencyMs: config.gatewayLatencyMs,
        failureRate: config.gatewayFailureRate,
      });
      await consumer.start(createProcessor(database.db, gateway, processorOptions(config), log));
      const api = serveApi(config, database, publisher, log);
      log.info("running every role in one process", {
        database: config.databaseUrl ? "postgresql" : `pglite (${config.dataDir})`,
        queue: config.amqpUrl ? "rabbitmq" : "in-process",
      });
      onShutdown(log, async () => {
        await api.stop();
        await consumer.close();
        await publisher.close();
        await database.close();
      });
      break;
    }
  }
}

try {
  await main();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`payouts: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
