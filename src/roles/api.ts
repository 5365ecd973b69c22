import type { Config } from "../config";
import type { Logger } from "../lib/log";
import { brokerPublisher, postgres, requireSecretKeys, requireUrls } from "./adapters";
import {
  databaseComponent,
  httpComponent,
  keysComponent,
  outboxComponent,
  publisherComponent,
  webhookSecretsComponent,
} from "./components";
import { type Component, run } from "./run";

/**
 * `--role=api`, in start order (the webhook secrets brought under the current key right after the database). SIGTERM stops them in reverse, which is what makes it safe: the
 * http component stops accepting, drains its kept-alive clients and answers every request in
 * flight (each hands its payout to the outbox); the API keys write their last uses; then the
 * outbox publishes those hand-offs and ends its relay pass; then the publisher closes, with
 * nothing left to publish; the database last.
 */
function apiComponents(config: Config, log: Logger): Component[] {
  const database = databaseComponent("database", () => postgres(config, config.dbPoolSize, "payouts-api"));
  const publisher = publisherComponent(() => brokerPublisher(config, log));
  const outbox = outboxComponent(config, log, database, () => publisher.value);
  const keys = keysComponent(config, log, database);
  const secrets = webhookSecretsComponent(config, log, database);
  return [
    database,
    secrets,
    publisher,
    outbox,
    keys,
    httpComponent(config, log, database, () => publisher.value, outbox, keys, secrets),
  ];
}

export async function apiRole(config: Config, log: Logger): Promise<void> {
  requireUrls(config, "api", ["DATABASE_URL", "AMQP_URL"]);
  requireSecretKeys(config, "api");
  await run(apiComponents(config, log), log);
}
