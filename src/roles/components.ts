// The components the roles are made of. Each one's stop() finishes or hands back what it has in
// flight; a role lists them so that what a component uses starts before it and stops after it.

import { type Config, ConfigError } from "../config";
import { FAULT_POLICIES } from "../db/availability";
import type { Database } from "../db/client";
import { isDatabaseUnavailable, noAnswerWithin } from "../db/errors";
import { createApp } from "../http/app";
import { type KeyService, keyService } from "../keys/service";
import type { Logger } from "../lib/log";
import { deadline, every, type Loop } from "../lib/timers";
import { startKeyPurge } from "../payouts/key-retention";
import { createOutbox, type Outbox } from "../payouts/processing/outbox";
import type { Publisher } from "../queue/port";
import { startDeliveries } from "../webhooks/delivery/loop";
import { type SecretBox, sealStoredSecrets } from "../webhooks/secret-box";
import { clock, postgres, webhookSecretBox } from "./adapters";
import { apiGuard, apiPlugins } from "./http-features";
import { deliveryOptions, keyPurgeOptions, keyServiceOptions, outboxOptions, webhookSettings } from "./options";
import { type Component, type Resource, resource } from "./run";

/**
 * How long a stopping api keeps its listener and answers with `Connection: close` before it closes
 * what is left: long enough for a client on a kept-alive connection that is sending request after
 * request to get one such answer, and so not to send on a connection the server is closing.
 */
const DRAIN_MS = 500;

/** How often a process that started while the database was down tries to seal the stored secrets. */
const SEAL_RETRY_MS = 1000;

export const databaseComponent = (name: string, open: () => Database | Promise<Database>) =>
  resource(name, open, (database) => database.close());

export const publisherComponent = (open: () => Publisher) =>
  resource("publisher", open, (publisher) => publisher.close());

/**
 * The outbox: its relay loop runs from start, and it takes the api's hand-offs. stop() ends the
 * relay pass in flight and clears the confirmed hand-offs, so the publisher must outlive it.
 */
export const outboxComponent = (
  config: Config,
  log: Logger,
  database: Resource<Database>,
  publisher: () => Publisher,
): Resource<Outbox> =>
  resource(
    "outbox",
    () => {
      const outbox = createOutbox(
        { db: database.value.db, publisher: publisher(), log: log.child({ component: "outbox" }) },
        outboxOptions(config),
      );
      outbox.start();
      return outbox;
    },
    (outbox) => outbox.stop(),
  );

/**
 * The api's API keys: one service per process, so that its cache of verified keys is shared by
 * every request. Started before the http component and stopped after it: stop() writes the uses
 * (last_used_at) of the last requests while the database is still open.
 */
export const keysComponent = (config: Config, log: Logger, database: Resource<Database>): Resource<KeyService> =>
  resource(
    "api keys",
    () =>
      keyService({ db: database.value.db, clock, log: log.child({ component: "keys" }) }, keyServiceOptions(config)),
    (keys) => keys.stop(),
  );

/**
 * The box that seals webhook signing secrets (see webhookSecretBox), once every stored secret is
 * under its first key: those still in clear (stored before they were encrypted) and those sealed
 * with an older key (a rotation) are sealed again at start. Every api and worker does it, each
 * write conditional, so any number may start at once. A secret sealed with a key no longer listed
 * stops the start with a configuration error (exit 2): that key was dropped before its secrets
 * were sealed again, and deliveries to those endpoints could not be signed. The processes already
 * running, which still have it, keep going.
 */
export const webhookSecretsComponent = (
  config: Config,
  log: Logger,
  database: Resource<Database>,
): Resource<SecretBox> => {
  // Set only while a process that started with the database down still has to seal.
  let sealing: Loop | undefined;
  return resource(
    "webhook secrets",
    async () => {
      const box = webhookSecretBox(config);
      /** Seals what is due; false while the database cannot be asked (the pass is tried again). */
      const seal = async (): Promise<boolean> => {
        let report: Awaited<ReturnType<typeof sealStoredSecrets>>;
        try {
          report = await deadline(
            sealStoredSecrets({ db: database.value.db, box }),
            FAULT_POLICIES.answer.withinMs,
            noAnswerWithin,
          );
        } catch (err) {
          if (!isDatabaseUnavailable(err)) throw err;
          return false;
        }
        const unreadable = Object.entries(report.unreadable);
        if (unreadable.length > 0) {
          throw new ConfigError(
            `WEBHOOK_SECRET_KEYS lacks the key(s) that ${unreadable.map(([id, n]) => `${n} stored webhook signing secret(s) are encrypted with: "${id}"`).join("; ")}. Add the key back (after the current one) until every process has started with the new list.`,
          );
        }
        if (report.sealed + report.resealed > 0) {
          log.info("webhook signing secrets encrypted with the current key", {
            key_id: box.currentKeyId,
            were_in_clear: report.sealed,
            were_under_another_key: report.resealed,
          });
        }
        return true;
      };
      // With the database up, a missing key stops the start. With it down, the process starts (an
      // api answers live, not ready) and seals once the database answers: a key found missing then
      // is logged, and those endpoints' attempts fail naming it.
      if (await seal()) return box;
      sealing = every(
        SEAL_RETRY_MS,
        async () => {
          try {
            if (!(await seal())) return;
          } catch (err) {
            log.error("stored webhook signing secrets could not all be sealed", { err });
          }
          void sealing?.stop();
        },
        { name: "sealing webhook signing secrets", log },
      );
      return box;
    },
    () => sealing?.stop(),
  );
};

/**
 * The Elysia api on HOST:PORT. stop() first drains, then closes the listener and waits for the
 * requests in flight to be answered: the outbox, the publisher and the database they use stop after.
 */
export function httpComponent(
  config: Config,
  log: Logger,
  database: Resource<Database>,
  publisher: () => Publisher,
  outbox: Resource<Outbox>,
  keys: Resource<KeyService>,
  secrets: Resource<SecretBox>,
): Component {
  let app: ReturnType<typeof createApp> | undefined;
  let draining = false;
  return {
    name: "http",
    start() {
      app = createApp({
        database: database.value,
        log,
        brokerConnected: () => publisher().connected,
        guard: apiGuard(keys.value),
        features: apiPlugins(
          {
            database: database.value,
            clock,
            log,
            keys: keys.value,
            box: secrets.value,
            onCreated: (id) => outbox.value.handOff(id),
          },
          {
            idempotencyKeyTtlMs: config.idempotencyKeyTtlMs,
            createDeadlineMs: config.createDeadlineMs,
            webhooks: webhookSettings(config),
          },
        ),
      });
      // While stopping, every answer closes its connection: the client opens a new one (to another
      // replica) for its next request instead of sending it on one that is about to be closed.
      app.onRequest(({ set }) => {
        if (draining) set.headers.connection = "close";
      });
      app.listen({ hostname: config.host, port: config.port });
      log.info("api listening", { host: config.host, port: app.server?.port });
    },
    async stop() {
      // Bun's graceful server.stop() closes the listener and every connection with no request in
      // flight at once: a kept-alive connection between two requests counts as idle, so a request
      // its client was sending just then was reset (1 stop in 5 under load). Draining first with
      // `Connection: close` leaves no busy client on a kept-alive connection when it comes.
      draining = true;
      await Bun.sleep(DRAIN_MS);
      // Then it resolves once every request in flight has its response (test/ops/shutdown.test.ts);
      // requests are bounded by the database's statement timeout, so this cannot hang.
      await app?.stop();
    },
  };
}

/**
 * What the worker and role `all` run once their database and publisher are up, in start order:
 * the webhook secrets brought under the current key, payout processing (worker threads, or the in-process consumer), the relay, the idempotency key
 * purge, and webhook deliveries on their own pool. Stopped in reverse: deliveries finish their
 * attempts and yield to nothing more; the purge its batch; the relay its pass and its hand-offs,
 * while the publisher (and, in-process, the queue it feeds) is still open; processing last of
 * them, finishing or handing back its payouts while the database is still there to record them.
 */
export function processingComponents({
  config,
  log,
  database,
  publisher,
  processing,
  payoutsInFlight,
}: {
  config: Config;
  log: Logger;
  database: Resource<Database>;
  publisher: () => Publisher;
  processing: Component;
  /** Payouts this process is processing now: webhook deliveries yield to them. */
  payoutsInFlight: () => number;
}): { outbox: Resource<Outbox>; secrets: Resource<SecretBox>; components: Component[] } {
  const secrets = webhookSecretsComponent(config, log, database);
  const outbox = outboxComponent(config, log, database, publisher);
  const keyPurge = resource(
    "key purge",
    () => startKeyPurge({ db: database.value.db, log: log.child({ component: "key-purge" }) }, keyPurgeOptions(config)),
    (loop) => loop.stop(),
  );
  // Webhooks on a pool of their own: a slow receiver never holds a payout's connection. PGlite is
  // one connection: webhooks share it, and it is closed once, by its own component.
  const webhookDatabase = resource(
    "webhook database",
    () => (config.databaseUrl ? postgres(config, 4, "payouts-webhooks") : database.value),
    (webhooks) => (webhooks === database.current ? undefined : webhooks.close()),
  );
  const deliveries = resource(
    "webhook deliveries",
    () =>
      startDeliveries(
        {
          db: webhookDatabase.value.db,
          box: secrets.value,
          clock,
          log: log.child({ component: "webhooks" }),
          payoutsInFlight,
        },
        deliveryOptions(config),
      ),
    (running) => running.stop(),
  );
  return {
    outbox,
    secrets,
    components: [secrets, processing, outbox, keyPurge, webhookDatabase, deliveries],
  };
}
