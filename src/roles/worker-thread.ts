// A Bun Worker thread of the worker role: its own PostgreSQL pool, its own AMQP connection and
// channel (prefetch WORKER_CONCURRENCY), the same processor as every other mode.
// First, on its own: an error nobody catches in this thread is one log line and the thread's exit
// (code 1), which the supervisor answers with a fresh thread.
import "./lifecycle";
import { threadId } from "node:worker_threads";
import { type Config, loadConfig } from "../config";
import { createLogger, type Logger } from "../lib/log";
import { every } from "../lib/timers";
import { registry } from "../metrics";
import { brokerConsumer, postgres, startProcessing } from "./adapters";
import { databaseComponent } from "./components";
import { useLogger } from "./lifecycle";
import { type Component, resource, start } from "./run";

declare const self: Worker;

// How busy this thread is, for the webhook deliveries of its process, which yield to payouts.
const LOAD_EVERY_MS = 100;

/**
 * A worker thread, in start order: its database, then its consumer feeding the processor, then its
 * load reports. Its supervisor's "stop" stops them in reverse: the consumer finishes or hands back
 * the payouts in flight while the database is still there to record their outcomes.
 */
function threadComponents(config: Config, log: Logger): Component[] {
  const database = databaseComponent("database", () => postgres(config, config.dbPoolSize, "payouts-worker"));
  const consumer = brokerConsumer(config, log);
  const processing = {
    name: "processing",
    start: () => startProcessing(config, database.value, consumer, log),
    stop: () => consumer.close(),
  };
  const load = resource(
    "load reports",
    () =>
      every(LOAD_EVERY_MS, async () => self.postMessage({ type: "load", inFlight: consumer.inFlight }), {
        name: "load report",
        log,
      }),
    (loop) => loop.stop(),
  );
  return [database, processing, load];
}

const config = loadConfig();
const log = createLogger(config.logLevel, config.logFormat, { role: "worker", thread: threadId });
useLogger(log);
if (!config.databaseUrl || !config.amqpUrl) throw new Error("worker threads need DATABASE_URL and AMQP_URL");

const running = await start(threadComponents(config, log), log);
self.postMessage({ type: "started" });

self.onmessage = async (event: MessageEvent) => {
  // The supervisor's metrics endpoint asks on every scrape: this thread's counts since the last
  // answer, and its gauges.
  if (event.data?.type === "metrics") self.postMessage({ type: "metrics", report: registry.drain() });
  if (event.data?.type !== "stop") return;
  await running.stop();
  self.postMessage({ type: "metrics", report: registry.drain() });
  self.postMessage({ type: "stopped" });
};
