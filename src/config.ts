import { availableParallelism } from "node:os";

export const ROLES = ["all", "migrate", "api", "worker", "keys"] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Config = {
  databaseUrl: string | undefined;
  amqpUrl: string | undefined;
  host: string;
  port: number;
  logLevel: LogLevel;
  logFormat: "json" | "pretty";
  dbPoolSize: number;
  workerThreads: number;
  workerConcurrency: number;
  metricsPort: number;
  gatewayLatencyMs: number;
  gatewayFailureRate: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  taskTimeLimitMs: number;
  relayIntervalMs: number;
  migrateWaitMs: number;
  relayRepublishAfterMs: number;
  idempotencyKeyTtlMs: number;
  createDeadlineMs: number;
  dataDir: string;
  webhookTimeoutMs: number;
  webhookMaxAttempts: number;
  webhookRetryBaseDelayMs: number;
  webhookDisableAfter: number;
  webhookBusyRate: number;
  webhookEndpointConcurrency: number;
  webhookSecretOverlapMs: number;
  webhookAllowPrivateNetworks: boolean;
  webhookAllowHttp: boolean;
  /** WEBHOOK_SECRET_KEYS: the first encrypts webhook signing secrets, every one decrypts; unset: none given. */
  webhookSecretKeys: SecretKey[] | undefined;
  apiKeyCacheTtlMs: number;
};

/** A key that encrypts webhook signing secrets at rest (AES-256-GCM): its id is stored with each secret. */
export type SecretKey = { id: string; key: Buffer };

/** A wrong setting: the message names the variable, and the program stops. */
export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (raw !== "true" && raw !== "false") throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  return raw === "true";
}

function probability(env: Env, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || value < 0 || value > 1) {
    throw new ConfigError(`${name} must be a number from 0 to 1, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!allowed.includes(raw as T)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got an unparseable value`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(" or ")}`);
  }
  return raw;
}

/**
 * A list of `id:base64(32 bytes)` entries, comma-separated: WEBHOOK_SECRET_KEYS, or the embedded
 * default's key file (`source` names which). An error names the source and the entry's position,
 * never the key material.
 */
export function parseSecretKeys(raw: string, source: string): SecretKey[] {
  const keys = raw.split(",").map((entry, index) => {
    const match = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/]{43}=)$/.exec(entry.trim());
    if (!match) {
      throw new ConfigError(
        `${source} entry ${index + 1} must be <id>:<base64 of 32 bytes>, the id of 1 to 32 letters, digits, _ or - (make a key with: openssl rand -base64 32)`,
      );
    }
    return { id: match[1] as string, key: Buffer.from(match[2] as string, "base64") };
  });
  const ids = keys.map((k) => k.id);
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated !== undefined) throw new ConfigError(`${source} names the key id "${repeated}" twice`);
  return keys;
}

function secretKeys(env: Env, name: string): SecretKey[] | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === "" ? undefined : parseSecretKeys(raw, name);
}

const DAY_MS = 86_400_000;
// Measured (bench/RESULTS.md, issue 17): api, worker and PostgreSQL on one loaded 2-core machine,
// 64 clients creating, fewer than 0.1% of creates reach it while PostgreSQL is healthy.
const CREATE_DEADLINE_DEFAULT_MS = 2000;

/** Reads and validates the environment once; every later read uses the returned object. */
export function loadConfig(env: Env = process.env): Config {
  const cpus = availableParallelism();
  return {
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    amqpUrl: url(env, "AMQP_URL", ["amqp:", "amqps:"]),
    host: env.HOST?.trim() || "0.0.0.0",
    port: integer(env, "PORT", 8000, 0, 65535),
    logLevel: oneOf(env, "LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: oneOf(
      env,
      "LOG_FORMAT",
      ["json", "pretty"] as const,
      env.NODE_ENV === "development" ? "pretty" : "json",
    ),
    dbPoolSize: integer(env, "DB_POOL_SIZE", 10, 1, 200),
    workerThreads: integer(env, "WORKER_THREADS", cpus, 1, 64),
    workerConcurrency: integer(env, "WORKER_CONCURRENCY", 500, 1, 5000),
    metricsPort: integer(env, "METRICS_PORT", 9100, 0, 65535),
    gatewayLatencyMs: integer(env, "GATEWAY_LATENCY_MS", 500, 0, 600_000),
    gatewayFailureRate: probability(env, "GATEWAY_FAILURE_RATE", 0),
    maxAttempts: integer(env, "MAX_ATTEMPTS", 5, 1, 100),
    retryBaseDelayMs: integer(env, "RETRY_BASE_DELAY_MS", 1000, 1, 3_600_000),
    taskTimeLimitMs: integer(env, "TASK_TIME_LIMIT_MS", 60_000, 1, 3_600_000),
    relayIntervalMs: integer(env, "RELAY_INTERVAL_MS", 1000, 10, 600_000),
    migrateWaitMs: integer(env, "MIGRATE_WAIT_MS", 60_000, 0, 3_600_000),
    relayRepublishAfterMs: integer(env, "RELAY_REPUBLISH_AFTER_MS", 600_000, 1000, 86_400_000),
    // At least Stripe's 24 hours: a client's retries of one request must all find its key.
    idempotencyKeyTtlMs: integer(env, "IDEMPOTENCY_KEY_TTL_MS", 7 * DAY_MS, DAY_MS, 366 * DAY_MS),
    // A create not committed by then never is (src/payouts/service.ts): its answer comes within
    // this plus 1.2 s (createAnswerBoundMs). At 200 ms a loaded 2-core node already refuses some.
    createDeadlineMs: integer(env, "CREATE_DEADLINE_MS", CREATE_DEADLINE_DEFAULT_MS, 200, 60_000),
    dataDir: env.DATA_DIR?.trim() || ".data",
    webhookTimeoutMs: integer(env, "WEBHOOK_TIMEOUT_MS", 10_000, 1, 600_000),
    webhookMaxAttempts: integer(env, "WEBHOOK_MAX_ATTEMPTS", 8, 1, 100),
    webhookRetryBaseDelayMs: integer(env, "WEBHOOK_RETRY_BASE_DELAY_MS", 5000, 1, 36_000_000),
    webhookDisableAfter: integer(env, "WEBHOOK_DISABLE_AFTER", 10, 1, 1_000_000),
    webhookBusyRate: integer(env, "WEBHOOK_BUSY_RATE", 300, 0, 1_000_000),
    webhookEndpointConcurrency: integer(env, "WEBHOOK_ENDPOINT_CONCURRENCY", 8, 1, 32),
    webhookSecretOverlapMs: integer(env, "WEBHOOK_SECRET_OVERLAP_MS", 86_400_000, 0, 31 * 86_400_000),
    webhookAllowPrivateNetworks: boolean(env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", false),
    webhookAllowHttp: boolean(env, "WEBHOOK_ALLOW_HTTP", false),
    webhookSecretKeys: secretKeys(env, "WEBHOOK_SECRET_KEYS"),
    // How long an api trusts a verified key without reading it again: the bound within which a
    // revocation or expiry reaches every replica. At most 10 s: the contract says a few seconds.
    apiKeyCacheTtlMs: integer(env, "API_KEY_CACHE_TTL_MS", 2000, 0, 10_000),
  };
}
