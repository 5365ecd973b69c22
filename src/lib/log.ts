import { LOG_LEVELS, type LogLevel } from "../config";

type Fields = Record<string, unknown>;

export type Logger = {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
};

/**
 * An error as a log field, with its cause. A failed query's message carries its parameters (an
 * amount, recipient details): they are cut, the statement and the database's reason are kept.
 */
function errorFields(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const message = value.message.split("\nparams:")[0] as string;
  return {
    name: value.name,
    message,
    stack: value.stack?.replace(value.message, message),
    ...(value.cause === undefined ? {} : { cause: errorFields(value.cause) }),
  };
}

/** Where finished lines go: warn and error to stderr, the rest to stdout. Tests pass their own. */
type LogSink = (line: string, level: LogLevel) => void;

const stdio: LogSink = (line, level) =>
  (level === "error" || level === "warn" ? process.stderr : process.stdout).write(line);

/**
 * Structured logs: one JSON object per line (production), or a readable line (development).
 * Errors under the key `err` are expanded so that their stack is kept.
 */
export function createLogger(
  level: LogLevel,
  format: "json" | "pretty",
  base: Fields = {},
  sink: LogSink = stdio,
): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  // Lines carry the machine's time, not the Clock port's: a log line says when it was written, and
  // the logger is made before the composition root chooses a clock.
  const write = (lvl: LogLevel, msg: string, fields?: Fields) => {
    if (LOG_LEVELS.indexOf(lvl) < threshold) return;
    const all: Fields = { ...base, ...fields };
    if ("err" in all) all.err = errorFields(all.err);
    if (format === "json") {
      sink(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...all })}\n`, lvl);
    } else {
      // Like JSON, a field that is undefined is left out.
      const rest = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      sink(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${msg}${rest ? ` ${rest}` : ""}\n`, lvl);
    }
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger(level, format, { ...base, ...fields }, sink),
  };
}
