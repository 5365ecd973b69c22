import type { Config } from "../config";
import type { Database } from "../db/client";
import { pathOf } from "../http/request-log";
import type { Logger } from "../lib/log";
import { metricsResponse, registry } from "../metrics";
import { brokerPublisher, postgres, requireSecretKeys, requireUrls } from "./adapters";
import { databaseComponent, processingComponents, publisherComponent } from "./components";
import { type Component, resource, run } from "./run";
import { startWorkerThreads, type WorkerThreads } from "./thread-supervisor";

/**
 * The worker role's /metrics on METRICS_PORT: this process's registry, with every thread's report;
 * and its /health for the container's healthcheck and a liveness probe: 200 while every thread
 * runs, 503 while one is missing (not started yet, or dead and not yet restarted). A port that
 * cannot be bound (another worker on this host has it) is logged, not fatal: payouts matter more
 * than their metrics, and the scrape target going down shows it.
 */
function serveWorkerMetrics(
  config: Config,
  threads: () => WorkerThreads | undefined,
  database: () => Database | undefined,
  log: Logger,
) {
  try {
    const server = Bun.serve({
      hostname: config.host,
      port: config.metricsPort,
      async fetch(request) {
        // The URL is relative for a probe that sends no Host (HTTP/1.0).
        const path = pathOf(request.url);
        if (/^\/health\/?$/.test(path)) {
          const size = threads()?.size ?? 0;
          const running = size === config.workerThreads;
          // Liveness: the database's state is reported, never counted. During an outage the
          // threads wait for it and resume on their own; a restart would not bring it back.
          return Response.json(
            {
              status: running ? "ok" : "unavailable",
              threads: size,
              expected: config.workerThreads,
              database: database()?.availability.available ? "up" : "down",
            },
            { status: running ? 200 : 503 },
          );
        }
        if (!/^\/metrics\/?$/.test(path)) return new Response("not found\n", { status: 404 });
        await threads()?.collectMetrics();
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

/**
 * `--role=worker`, in start order: metrics first and last to stop, so that the liveness probe
 * answers and the last scrape gets the threads' final counts until the very end; the relay's small
 * pool and the publisher; then what role `all` runs too (see processingComponents), with the
 * worker threads as its processing. The worker role relays too, so payouts whose hand-off failed
 * are published even while no api replica runs.
 */
function workerComponents(config: Config, log: Logger): Component[] {
  const threads = resource(
    "worker threads",
    () => startWorkerThreads({ log }, { count: config.workerThreads }),
    (running) => running.stop(),
  );
  const database = databaseComponent("database", () => postgres(config, 2, "payouts-worker-relay"));
  const metrics = resource(
    "worker metrics",
    () =>
      serveWorkerMetrics(
        config,
        () => threads.current,
        () => database.current,
        log,
      ),
    (server) => server?.stop(true),
  );
  const publisher = publisherComponent(() => brokerPublisher(config, log));
  const { components } = processingComponents({
    config,
    log,
    database,
    publisher: () => publisher.value,
    processing: threads,
    payoutsInFlight: () => threads.current?.inFlight ?? 0,
  });
  return [metrics, database, publisher, ...components];
}

export async function workerRole(config: Config, log: Logger): Promise<void> {
  requireUrls(config, "worker", ["DATABASE_URL", "AMQP_URL"]);
  requireSecretKeys(config, "worker");
  await run(workerComponents(config, log), log);
}
