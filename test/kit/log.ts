import type { LogLevel } from "../../src/config";
import { createLogger, type Logger } from "../../src/lib/log";

const LOG_LEVEL = process.env.TEST_LOG_LEVEL as LogLevel | undefined;

/** TEST_LOG_LEVEL as tests pass it on to the processes they spawn: unset, they log errors only. */
export const childLogLevel: LogLevel = LOG_LEVEL ?? "error";

/**
 * For what runs inside the test process: silent, since tests provoke errors on purpose;
 * TEST_LOG_LEVEL=debug shows it all, from child processes too.
 */
export const quiet: Logger = LOG_LEVEL
  ? createLogger(LOG_LEVEL, "pretty")
  : { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
