// First, on its own: the signal and uncaught-error handlers are installed before any other module loads.
import "./roles/lifecycle";
import { type Config, ConfigError, loadConfig, ROLES, type Role } from "./config";
import { connectPostgres, type Database, openPglite } from "./db/client";
import { DatabaseUnreachable, migratePglite, migrateWhenReachable } from "./db/migrate";
import { createApp } from "./http/app";
import { containerArgs, roleIsHealthy } from "./http/healthcheck";
import { pathOf } from "./http/request-log";
import { runKeysCommand } from "./keys/cli";
import { compiledBinary } from "./lib/binary";
import { createLogger, type Logger } from "./lib/log";
import { metricsResponse, registry } from "./metrics";
import { startKeyPurge } from "./payouts/key-retention";
import { createOutbox, recoverInProcess } from "./payouts/processing/outbox";
import { memoryQueue } from "./queue/memory";
import type { Consumer, Publisher } from "./queue/port";
import { brokerConsumer, brokerPublisher, clock, outboxOptions, startProcessing } from "./roles/adapters";
import { onShutdown, useLogger } from "./roles/lifecycle";
import { startWorkerThreads, type WorkerThreads } from "./roles/thread-supervisor";
import { deliveryOptions, startDeliveries } from "./webhooks/delivery/loop";
import { webhookSettings } from "./webhooks/service";

/** `--role=api` or `--role api`; `all` when absent. */
const isRoleFlag = (arg: string) => arg === "--role" || arg.startsWith("--role=");

export function parseRole(argv: string[]): Role {
  const index = argv.findIndex(isRoleFlag);
  if (index === -1) return "all";
  const arg = argv[index] as string;
  const value = arg.includes("=") ? arg.slice("--role=".length) : argv[index + 1];
  if (!ROLES.includes(value as Role)) {
    throw new ConfigError(`--role must be one of ${ROLES.join(", ")}, got "${value ?? ""}"`);
  }
  return value as Role;
}

function requireUrls(config: Config, role: Role, names: ("DATABASE_URL" | "AMQP_URL")[]) {
  const missing = names.filter((n) => (n === "DATABASE_URL" ? !config.databaseUrl : !config.amqpUrl));
  if (missing.length > 0) {
    throw new ConfigError(
      `--role=${role} needs ${missing.join(" and ")} (the embedded database and in-process queue exist only in --role=all)`,
    );
  }
}

/**
 * How long a stopping api keeps its listener and answers with `Connection: close` before it closes
 * what is left: long enough for a client on a kept-alive connection that is sending request after
 * request to get one such answer, and so not to send on a connection the server is closing.
 */
const DRAIN_MS = 500;

function serveApi(config: Config, database: Database, publisher: Publisher, log: Logger) {
  const outbox = createOutbox(database.db, publisher, outboxOptions(config), log.child({ component: "outbox" }));
  let draining = false;
  const app = createApp({
    database,
    clock,
    log,
    onCreated: (id) => outbox.handOff(id),
    brokerConnected: () => publisher.connected,
    idempotencyKeyTtlMs: config.idempotencyKeyTtlMs,
    createDeadlineMs: config.createDeadlineMs,
    webhooks: webhookSettings(config),
  });
  // While stopping, every answer closes its connection: the client opens a new one (to another
  // replica) for its next request instead of sending it on one that is about to be closed.
  app.onRequest(({ set }) => {
    if (draining) set.headers.connection = "close";
  });
  app.listen({ hostname: config.host, port: config.port });
  outbox.start();
  log.info("api listening", { host: config.host, port: app.server?.port });
  return {
    outbox,
    async stop() {
      // Bun's graceful server.stop() closes the listener and every connection with no request in
      // flight at once: a kept-alive connection between two requests counts as idle, so a request
      // its client was sending just then was reset (1 stop in 5 under load). Draining first with
      // `Connection: close` leaves no busy client on a kept-alive connection when it comes.
      draining = true;
      await Bun.sleep(DRAIN_MS);
      // Then it resolves once every request in flight has its response (test/ops/shutdown.test.ts);
      // requests are bounded by the database's statement timeout, so this cannot hang. The
      // database and the broker close only after it (see the roles below).
      await app.stop();
      await outbox.stop();
    },
  };
}

// A round deletes batch after batch until none is left; small batches keep each DELETE's locks short.
const keyPurgeOptions = (config: Config) => ({
  ttlMs: config.idempotencyKeyTtlMs,
  intervalMs: 60_000,
  batchSize: 500,
});

/**
 * The worker role's /metrics on METRICS_PORT: this process's registry, with every thread's report;
 * and its /health for the container's healthcheck and a liveness probe: 200 while every thread
 * runs, 503 while one is missing (dead and not yet restarted). A port that cannot be bound
 * (another worker on this host has it) is logged, not fatal: payouts matter more than their
 * metrics, and the scrape target going down shows it.
 */
function serveWorkerMetrics(config: Config, threads: WorkerThreads, database: Database, log: Logger) {
  try {
    const server = Bun.serve({
      hostname: config.host,
      port: config.metricsPort,
      async fetch(request) {
        // The URL is relative for a probe that sends no Host (HTTP/1.0).
        const path = pathOf(request.url);
        if (/^\/health\/?$/.test(path)) {
          const running = threads.size === config.workerThreads;
          // Liveness: the database's state is reported, never counted. During an outage the
          // threads wait for it and resume on their own; a restart would not bring it back.
          return Response.json(
            {
              status: running ? "ok" : "unavailable",
              threads: threads.size,
              expected: config.workerThreads,
              database: database.availability.available ? "up" : "down",
            },
            { status: running ? 200 : 503 },
          );
        }
        if (!/^\/metrics\/?$/.test(path)) return new Response("not found\n", { status: 404 });
        await threads.collectMetrics();
        return metricsResponse(registry);
      },
    });
    log.info("worker metrics listening", { host: config.host, port: server.port });
    return server;
  } catch (err) {
    log.error("worker metrics not served: METRICS_PORT cannot be bound", { port: config.metricsPort, err });
    return undefined;
  }
}

/** Migrates, waiting for the database up to MIGRATE_WAIT_MS; a failure exits 1 with one line. */
async function migrateOrExit(url: string, config: Config, log: Logger): Promise<void> {
  try {
    await migrateWhenReachable(url, config.migrateWaitMs, log);
  } catch (err) {
    // An outage is not a bug: its line has no stack.
    if (err instanceof DatabaseUnreachable) log.error(err.message, { attempts: err.attempts, reason: err.reason });
    else log.error("migrations failed; none was applied", { err });
    process.exit(1);
  }
}

async function main() {
  if (Bun.argv.includes("--healthcheck")) {
    // Its own --role, else the container's (the image's one HEALTHCHECK serves every role).
    const args = Bun.argv.slice(2);
    const role = parseRole(args.some(isRoleFlag) ? args : containerArgs());
    // migrate serves nothing to ask: it is healthy while it runs, and its exit code is its result.
    process.exit(role === "migrate" || (await roleIsHealthy(role, loadConfig())) ? 0 : 1);
  }
  const role = parseRole(Bun.argv.slice(2));
  const config = loadConfig();
  const log = createLogger(config.logLevel, config.logFormat, { role });
  useLogger(log);

  switch (role) {
    case "migrate": {
      requireUrls(config, role, ["DATABASE_URL"]);
      // Exit 1: a Job or compose must not count an interrupted migration as done (its transaction
      // is rolled back with the connection).
      onShutdown(async () => log.warn("stopped before the migrations were applied"), 1);
      await migrateOrExit(config.databaseUrl as string, config, log);
      log.info("migrations applied");
      process.exit(0);
      break;
    }
    case "keys": {
      requireUrls(config, role, ["DATABASE_URL"]);
      // stdout holds the one JSON answer: every log line goes to stderr.
      const stderrLog = createLogger(config.logLevel, config.logFormat, { role }, (line) => process.stderr.write(line));
      useLogger(stderrLog);
      const database = connectPostgres(config.databaseUrl as string, 1, "payouts-keys");
      const stdout = (text: string) => process.stdout.write(text);
      const code = await runKeysCommand(Bun.argv.slice(2), { db: database.db, stdout, log: stderrLog });
      await database.close();
      process.exit(code);
      break;
    }
    case "api": {
      requireUrls(config, role, ["DATABASE_URL", "AMQP_URL"]);
      const database = connectPostgres(config.databaseUrl as string, config.dbPoolSize, "payouts-api");
      const publisher = brokerPublisher(config, config.amqpUrl as string, log);
      const api = serveApi(config, database, publisher, log);
      onShutdown(async () => {
        await api.stop();
        await publisher.close();
        await database.close();
      });
      break;
    }
    case "worker": {
      requireUrls(config, role, ["DATABASE_URL", "AMQP_URL"]);
      // The worker role relays too, so payouts whose hand-off failed are published even while
      // no api replica runs.
      const database = connectPostgres(config.databaseUrl as string, 2, "payouts-worker-relay");
      const publisher = brokerPublisher(config, config.amqpUrl as string, log);
      const outbox = createOutbox(database.db, publisher, outboxOptions(config), log.child({ component: "outbox" }));
      outbox.start();
      const purge = startKeyPurge(database.db, keyPurgeOptions(config), log.child({ component: "key-purge" }));
      const threads = startWorkerThreads(config.workerThreads, log);
      const metrics = serveWorkerMetrics(config, threads, database, log);
      // Webhooks on a pool of their own: a slow receiver never holds a payout's connection.
      const webhookDatabase = connectPostgres(config.databaseUrl as string, 4, "payouts-webhooks");
      const deliveries = startDeliveries(
        webhookDatabase.db,
        deliveryOptions(config),
        clock,
        log.child({ component: "webhooks" }),
        () => threads.inFlight,
      );
      onShutdown(async () => {
        await threads.stop();
        await deliveries.stop();
        await webhookDatabase.close();
        await purge.stop();
        await outbox.stop();
        await publisher.close();
        await database.close();
        await metrics?.stop(true);
      });
      break;
    }
    case "all": {
      if (!config.databaseUrl && compiledBinary) {
        // PGlite loads its WebAssembly and data files from node_modules, which the binary lacks.
        throw new ConfigError(
          "--role=all needs DATABASE_URL in the compiled binary: the embedded PGlite database runs only from source (bun run start)",
        );
      }
      const database = config.databaseUrl
        ? connectPostgres(config.databaseUrl, config.dbPoolSize, "payouts")
        : await openPglite(config.dataDir);
      if (config.databaseUrl) await migrateOrExit(config.databaseUrl, config, log);
      else await migratePglite(database.db);

      let publisher: Publisher;
      let consumer: Consumer;
      if (config.amqpUrl) {
        publisher = brokerPublisher(config, config.amqpUrl, log);
        consumer = brokerConsumer(config, config.amqpUrl, log);
      } else {
        ({ publisher, consumer } = memoryQueue(config.workerConcurrency, log));
        await recoverInProcess(database.db, publisher, log);
      }
      await startProcessing(config, database, consumer, log);
      const purge = startKeyPurge(database.db, keyPurgeOptions(config), log.child({ component: "key-purge" }));
      const api = serveApi(config, database, publisher, log);
      // PGlite is one connection: webhooks share it; PostgreSQL gives them a pool of their own.
      const webhookDatabase = config.databaseUrl
        ? connectPostgres(config.databaseUrl, 4, "payouts-webhooks")
        : database;
      const deliveries = startDeliveries(
        webhookDatabase.db,
        deliveryOptions(config),
        clock,
        log.child({ component: "webhooks" }),
        () => consumer.inFlight,
      );
      log.info("running every role in one process", {
        database: config.databaseUrl ? "postgresql" : `pglite (${config.dataDir})`,
        queue: config.amqpUrl ? "rabbitmq" : "in-process",
      });
      onShutdown(async () => {
        await api.stop();
        await deliveries.stop();
        if (webhookDatabase !== database) await webhookDatabase.close();
        await purge.stop();
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
  // Anything else is logged as one line with its stack by the uncaught-exception handler.
  throw err;
}
