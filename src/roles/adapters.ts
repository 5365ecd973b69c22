// Which adapter plays each port (database, broker, gateway, clock): chosen here and nowhere else,
// for every role and the worker thread alike.

import { type Config, ConfigError, parseSecretKeys, type Role } from "../config";
import { connectPostgres, type Database, openPglite } from "../db/client";
import { simulatedGateway } from "../gateway/simulated";
import { compiledBinary } from "../lib/binary";
import { type Clock, systemClock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { createProcessor } from "../payouts/processing/processor";
import { retryDelays } from "../payouts/processing/retry-policy";
import { memoryQueue } from "../queue/memory";
import type { Consumer, Publisher } from "../queue/port";
import { rabbitConsumer } from "../queue/rabbitmq/consumer";
import { rabbitPublisher } from "../queue/rabbitmq/publisher";
import { localSecretKey } from "../webhooks/local-key";
import { type SecretBox, secretBox } from "../webhooks/secret-box";
import { consumerOptions, gatewayOptions, retryPolicy } from "./options";

/** The time of day every role decides by: the machine's (tests pass others to what they build). */
export const clock: Clock = systemClock;

/** The api and worker roles run on the real services only: a missing URL stops them with one line. */
export function requireUrls(config: Config, role: Role, names: ("DATABASE_URL" | "AMQP_URL")[]) {
  const missing = names.filter((n) => (n === "DATABASE_URL" ? !config.databaseUrl : !config.amqpUrl));
  if (missing.length > 0) {
    throw new ConfigError(
      `--role=${role} needs ${missing.join(" and ")} (the embedded database and in-process queue exist only in --role=all)`,
    );
  }
}

/** A PostgreSQL pool on DATABASE_URL, named for `pg_stat_activity`. */
export const postgres = (config: Config, poolSize: number, applicationName: string): Database =>
  connectPostgres(config.databaseUrl as string, poolSize, applicationName);

/** Role `all` runs on the embedded PGlite only from source. */
export function requireEmbeddable(config: Config) {
  if (!config.databaseUrl && compiledBinary) {
    // PGlite loads its WebAssembly and data files from node_modules, which the binary lacks.
    throw new ConfigError(
      "--role=all needs DATABASE_URL in the compiled binary: the embedded PGlite database runs only from source (bun run start)",
    );
  }
}

/** Role `all`'s database: PostgreSQL when DATABASE_URL is set, else the embedded PGlite under DATA_DIR. */
export const embeddedOrPostgres = (config: Config): Promise<Database> | Database =>
  config.databaseUrl ? postgres(config, config.dbPoolSize, "payouts") : openPglite(config.dataDir);

export const brokerPublisher = (config: Config, log: Logger): Publisher =>
  rabbitPublisher({ log }, { url: config.amqpUrl as string, retryDelays: retryDelays(retryPolicy(config)) });

export const brokerConsumer = (config: Config, log: Logger): Consumer =>
  rabbitConsumer({ log }, consumerOptions(config, config.amqpUrl as string));

type Queue = { publisher: Publisher; consumer: Consumer; inProcess: boolean };

/** Role `all`'s queue: RabbitMQ when AMQP_URL is set, else the in-process queue. */
export const brokerOrMemory = (config: Config, log: Logger): Queue =>
  config.amqpUrl
    ? { publisher: brokerPublisher(config, log), consumer: brokerConsumer(config, log), inProcess: false }
    : { ...memoryQueue({ log }, { concurrency: config.workerConcurrency }), inProcess: true };

/**
 * The processing half of a process (a worker thread, or role `all`): the simulated gateway (the
 * only adapter of the gateway port so far) and the processor, fed by `consumer`.
 */
export async function startProcessing(config: Config, database: Database, consumer: Consumer, log: Logger) {
  const gateway = simulatedGateway({ db: database.db }, gatewayOptions(config));
  const processor = createProcessor(
    { db: database.db, availability: database.availability, gateway, clock, log },
    { ...retryPolicy(config), maxCalls: config.workerConcurrency },
  );
  await consumer.start(processor);
}

/**
 * With DATABASE_URL, a role that reads or writes webhook endpoints needs WEBHOOK_SECRET_KEYS: it
 * does not start without it, so secrets are never stored in clear, nor under a key kept beside
 * the data. Checked before anything starts.
 */
export function requireSecretKeys(config: Config, role: Role) {
  if (config.databaseUrl && !config.webhookSecretKeys) {
    throw new ConfigError(
      `--role=${role} with DATABASE_URL needs WEBHOOK_SECRET_KEYS: <id>:<base64 of 32 random bytes>, the key that encrypts webhook signing secrets (make one with: openssl rand -base64 32)`,
    );
  }
}

/**
 * The keys that seal webhook signing secrets: WEBHOOK_SECRET_KEYS; on the embedded default without
 * it, the key file under DATA_DIR, made on the first start. Called once the embedded database has
 * opened its directory: PGlite creates its cluster only in an empty one.
 */
export function webhookSecretBox(config: Config): SecretBox {
  if (config.webhookSecretKeys) return secretBox(config.webhookSecretKeys);
  const local = localSecretKey(config.dataDir);
  return secretBox(parseSecretKeys(local.keys, local.path));
}
