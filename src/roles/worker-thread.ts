// A Bun Worker thread of the worker role: its own PostgreSQL pool, its own AMQP connection and
// channel (prefetch WORKER_CONCURRENCY), the same processor as every other mode.
// First, on its own: an error nobody catches in this thread is one log line and the thread's exit
// (code 1), which the supervisor answers with a fresh thread.
import "./lifecycle";
import { threadId } from "node:worker_threads";
import { loadConfig } from "../config";
import { connectPostgres } from "../db/client";
import { createLogger } from "../lib/log";
import { registry } from "../metrics";
import { brokerConsumer, startProcessing } from "./adapters";
import { useLogger } from "./lifecycle";

declare const self: Worker;

const config = loadConfig();
const log = createLogger(config.logLevel, config.logFormat, { role: "worker", thread: threadId });
useLogger(log);
if (!config.databaseUrl || !config.amqpUrl) throw new Error("worker threads need DATABASE_URL and AMQP_URL");

const database = connectPostgres(config.databaseUrl, config.dbPoolSize, "payouts-worker");
const consumer = brokerConsumer(config, config.amqpUrl, log);
await startProcessing(config, database, consumer, log);
self.postMessage({ type: "started" });

// How busy this thread is, for the webhook deliveries of its process, which yield to payouts.
const LOAD_EVERY_MS = 100;
setInterval(() => self.postMessage({ type: "load", inFlight: consumer.inFlight }), LOAD_EVERY_MS).unref();

self.onmessage = async (event: MessageEvent) => {
  // The supervisor's metrics endpoint asks on every scrape: this thread's counts since the last
  // answer, and its gauges.
  if (event.data?.type === "metrics") self.postMessage({ type: "metrics", report: registry.drain() });
  if (event.data?.type !== "stop") return;
  await consumer.close();
  await database.close();
  self.postMessage({ type: "metrics", report: registry.drain() });
  self.postMessage({ type: "stopped" });
};
