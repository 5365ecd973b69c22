// The process's handlers, in place before any other module runs: main.ts and the worker thread's
// entry import this module first. A SIGTERM that arrives while the rest still loads is then
// handled, not ignored (the binary is PID 1 in a container, where an unhandled SIGTERM does
// nothing) and not fatal (elsewhere it would kill the process with no exit code).
import { isMainThread } from "node:worker_threads";
import { DatabaseUnavailableError, isDatabaseUnavailable } from "../db/errors";
import { createLogger, type Logger } from "../lib/log";

// Until the configuration is read, lines use the defaults: JSON at info.
let log: Logger = createLogger("info", "json");
let stop: (() => Promise<void>) | undefined;
let stoppedExitCode = 0;
let stopping = false;

/** From now on the handlers log with this logger (the configured level, format and fields). */
export function useLogger(logger: Logger): void {
  log = logger;
}

/**
 * What SIGTERM and SIGINT do from now on: run `stopWith`, then exit with `exitCode` (1 if it
 * failed). Before a role registers one, nothing is in flight and a signal exits 0 at once.
 */
export function onShutdown(stopWith: () => Promise<void>, exitCode = 0): void {
  stop = stopWith;
  stoppedExitCode = exitCode;
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info("shutting down", { signal });
  try {
    await stop?.();
    log.info("stopped");
    process.exit(stoppedExitCode);
  } catch (err) {
    log.error("shutdown failed", { err });
    process.exit(1);
  }
}

/**
 * An error nobody caught leaves the process in a state nobody planned for: one line with the stack
 * as a field, then exit 1. The orchestrator restarts a process, the supervisor a worker thread.
 */
function fatal(msg: string, err: unknown): void {
  log.error(msg, { err });
  process.exit(1);
}

/**
 * A lost connection's error can reach the event loop a second time as a promise nobody awaits:
 * Bun's node:net rejects one with a reset socket's failed read or write, and a driver's internal
 * query on a connection being torn down rejects too. The connection's owner has already been told
 * (postgres.js fails its queries and reconnects, amqplib its channel) and the database stays the
 * source of truth, so nothing is left unplanned: the process logs it and carries on serving
 * instead of dropping every other request with it. Anything else is a bug, and fatal.
 */
function isLostConnection(reason: unknown): boolean {
  return isDatabaseUnavailable(reason) && !(reason instanceof DatabaseUnavailableError);
}

process.on("uncaughtException", (err) => fatal("uncaught exception; exiting", err));
process.on("unhandledRejection", (reason) => {
  if (isLostConnection(reason))
    log.warn("a lost connection's error surfaced again; its owner handles it", { err: reason });
  else fatal("unhandled rejection; exiting", reason);
});
// Signals are delivered to the process, whose main thread owns the shutdown.
if (isMainThread) {
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
