import type { Database } from "../db/client";
import { eventRoutes, eventsDocument } from "../events/routes";
import { eventService } from "../events/service";
import type { Feature } from "../http/app";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { payoutRoutes, payoutsDocument } from "../payouts/routes";
import { payoutService } from "../payouts/service";
import { webhookRoutes, webhooksDocument } from "../webhooks/routes";
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
    onCreated,
  }: { database: Database; clock: Clock; log: Logger; onCreated: (id: string) => void },
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
    { routes: webhookRoutes(webhookService({ db: database.db }, webhooks)), docs: webhooksDocument },
  ];
}
