import type { Database } from "../db/client";
import { eventRoutes, eventsDocument } from "../events/routes";
import { eventService } from "../events/service";
import type { Feature, Guard } from "../http/app";
import { bearerAuth, scopeFor } from "../keys/auth";
import { keyRoutes, keysDocument } from "../keys/routes";
import type { KeyService } from "../keys/service";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { payoutRoutes, payoutsDocument } from "../payouts/routes";
import { payoutService } from "../payouts/service";
import { webhookRoutes, webhooksDocument } from "../webhooks/routes";
import type { SecretBox } from "../webhooks/secret-box";
import { type WebhookSettings, webhookService } from "../webhooks/service";

/**
 * The features the api serves, in the order its document lists them. `onCreated` hands a
 * committed payout to processing; it never throws.
 */
export function apiPlugins(
  {
    database,
    clock,
    log,
    keys,
    box,
    onCreated,
  }: {
    database: Database;
    clock: Clock;
    log: Logger;
    keys: KeyService;
    /** Seals the webhook signing secrets the api makes (create, rotate). */
    box: SecretBox;
    onCreated: (id: string) => void;
  },
  {
    idempotencyKeyTtlMs,
    createDeadlineMs,
    webhooks,
  }: {
    /** IDEMPOTENCY_KEY_TTL_MS: how long a key stays bound to its first response. */
    idempotencyKeyTtlMs: number;
    /** CREATE_DEADLINE_MS: how long a create may take to commit (src/payouts/service.ts). */
    createDeadlineMs: number;
    webhooks: WebhookSettings;
  },
): Feature[] {
  return [
    {
      routes: payoutRoutes(
        payoutService(
          { db: database.db, availability: database.availability, clock, log },
          { idempotencyKeyTtlMs, createDeadlineMs },
        ),
        onCreated,
      ),
      docs: payoutsDocument,
    },
    { routes: eventRoutes(eventService({ db: database.db })), docs: eventsDocument },
    { routes: webhookRoutes(webhookService({ db: database.db, box }, webhooks)), docs: webhooksDocument },
    { routes: keyRoutes(keys), docs: keysDocument },
  ];
}

/** Bearer API keys in front of every route but /health/*, /swagger* and /metrics (docs: access-control). */
export const apiGuard = (keys: KeyService): Guard => ({
  plugin: (answered) => bearerAuth({ keys, answered }),
  scopeOf: scopeFor,
});
