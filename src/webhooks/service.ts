import { and, desc, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { type WebhookDeliveryRow, type WebhookEndpointRow, webhookDeliveries, webhookEndpoints } from "../db/schema";
import { NotFound, ValidationFailed } from "../errors";
import { EVENT_TYPES } from "../events/model";
import { type PageQuery, page, unfilteredList } from "../lib/lists";
import { refusedAddress, urlProblem } from "./addresses";
import type {
  CreateWebhookEndpointInput,
  DeliveryStatus,
  UpdateWebhookEndpointInput,
  WebhookDelivery,
  WebhookEndpoint,
} from "./model";
import type { SecretBox } from "./secret-box";
import { newSecret } from "./signing";
import { type DeliveryListQuery, deliveryList } from "./validation";

export type WebhookSettings = {
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: loopback and private addresses are allowed (development, tests). */
  allowPrivateNetworks: boolean;
  /** WEBHOOK_ALLOW_HTTP: plain http URLs are allowed (development, tests); otherwise https only. */
  allowHttp: boolean;
  /** WEBHOOK_SECRET_OVERLAP_MS: how long the previous secret still signs after a rotation. */
  secretOverlapMs: number;
};

function toEndpoint(row: WebhookEndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    event_types: row.eventTypes,
    description: row.description,
    enabled: row.enabled,
    disabled_reason: row.disabledReason,
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    updated_at: row.updatedAt.toISOString(),
    updated_by: row.updatedBy,
  };
}

function toDelivery(row: WebhookDeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    event_id: row.eventId,
    event_type: row.eventType,
    status: row.status,
    attempts: row.attempts,
    last_attempt_at: row.lastAttemptAt?.toISOString() ?? null,
    next_attempt_at: row.status === "pending" ? row.nextAttemptAt.toISOString() : null,
    last_response_status: row.lastResponseStatus,
    last_error: row.lastError,
  };
}

const DISABLED_BY_CLIENT = "disabled by a client";

/**
 * Webhook endpoints and their deliveries as clients manage them. Delivering is delivery/'s.
 * Signing secrets are stored sealed by `box` and shown in clear once, in the answer that makes
 * them. `actor` is the API key making the change (created_by, updated_by).
 */
export function webhookService({ db, box }: { db: Db; box: SecretBox }, settings: WebhookSettings) {
  /** The URL rules, DNS included: a 400 naming the url when it may not be sent to. */
  const checkUrl = async (raw: string) => {
    const problem = urlProblem(raw, settings) ?? (await refusedAddress(new URL(raw), settings.allowPrivateNetworks));
    if (problem) throw new ValidationFailed([{ field: "url", message: problem }]);
  };

  const endpointRow = async (id: string) => {
    const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
    if (!row) throw new NotFound("webhook endpoint");
    return row;
  };

  return {
    async create(input: CreateWebhookEndpointInput, actor: string) {
      await checkUrl(input.url);
      const id = Bun.randomUUIDv7();
      const secret = newSecret();
      const [row] = await db
        .insert(webhookEndpoints)
        .values({
          id,
          url: input.url,
          eventTypes: input.event_types ?? [...EVENT_TYPES],
          description: input.description ?? "",
          enabled: input.enabled ?? true,
          disabledReason: input.enabled === false ? DISABLED_BY_CLIENT : null,
          disabledAt: input.enabled === false ? sql`date_trunc('milliseconds', now())` : null,
          secret: box.seal(secret, id),
          createdBy: actor,
          updatedBy: actor,
        })
        .returning();
      if (!row) throw new Error("INSERT returned no row");
      return { ...toEndpoint(row), secret };
    },

    /** Newest first, by id (a UUID v7, so by creation). */
    async list(query: PageQuery) {
      const rows = await db
        .select()
        .from(webhookEndpoints)
        .where(query.cursor && lt(webhookEndpoints.id, query.cursor.id))
        .orderBy(desc(webhookEndpoints.id))
        .limit(query.limit + 1);
      return page(rows, query, unfilteredList, toEndpoint);
    },

    get: async (id: string) => toEndpoint(await endpointRow(id)),

    /**
     * Enabling clears disabled_reason and the run of failed deliveries that disabled it. Disabling
     * records when, unless it was disabled already: the fan-out gives a disabled endpoint the
     * events that happened before that moment (src/webhooks/delivery.ts, fanOut).
     */
    async update(id: string, input: UpdateWebhookEndpointInput, actor: string) {
      if (input.url !== undefined) await checkUrl(input.url);
      const [row] = await db
        .update(webhookEndpoints)
        .set({
          url: input.url,
          eventTypes: input.event_types,
          description: input.description,
          enabled: input.enabled,
          ...(input.enabled === true ? { disabledReason: null, consecutiveFailures: 0, disabledAt: null } : {}),
          ...(input.enabled === false
            ? {
                disabledReason: DISABLED_BY_CLIENT,
                disabledAt: sql`CASE WHEN ${webhookEndpoints.enabled} THEN date_trunc('milliseconds', now()) ELSE ${webhookEndpoints.disabledAt} END`,
              }
            : {}),
          updatedAt: sql`now()`,
          updatedBy: actor,
        })
        .where(eq(webhookEndpoints.id, id))
        .returning();
      if (!row) throw new NotFound("webhook endpoint");
      return toEndpoint(row);
    },

    /**
     * The endpoint and its deliveries go together: no attempt to it starts afterwards (an attempt
     * already on the wire finishes, and its result is dropped).
     */
    async remove(id: string) {
      await db.transaction(async (tx) => {
        const [row] = await tx
          .delete(webhookEndpoints)
          .where(eq(webhookEndpoints.id, id))
          .returning({ id: webhookEndpoints.id });
        if (!row) throw new NotFound("webhook endpoint");
        await tx.delete(webhookDeliveries).where(eq(webhookDeliveries.endpointId, id));
      });
    },

    /** A new secret; the previous one still signs for WEBHOOK_SECRET_OVERLAP_MS. */
    async rotateSecret(id: string, actor: string) {
      const secret = newSecret();
      const [row] = await db
        .update(webhookEndpoints)
        .set({
          secret: box.seal(secret, id),
          previousSecret: sql`${webhookEndpoints.secret}`,
          previousSecretExpiresAt: sql`now() + make_interval(secs => ${settings.secretOverlapMs / 1000})`,
          updatedAt: sql`now()`,
          updatedBy: actor,
        })
        .where(eq(webhookEndpoints.id, id))
        .returning({ id: webhookEndpoints.id });
      if (!row) throw new NotFound("webhook endpoint");
      return { secret };
    },

    /** Newest first (by the event's time), optionally of one status. */
    async deliveries(endpointId: string, query: DeliveryListQuery) {
      await endpointRow(endpointId);
      const rows = await db
        .select()
        .from(webhookDeliveries)
        .where(
          and(
            eq(webhookDeliveries.endpointId, endpointId),
            query.status && eq(webhookDeliveries.status, query.status as DeliveryStatus),
            query.cursor && lt(webhookDeliveries.id, query.cursor.id),
          ),
        )
        .orderBy(desc(webhookDeliveries.id))
        .limit(query.limit + 1);
      return page(rows, query, deliveryList, toDelivery);
    },

    /**
     * An attempt as soon as a worker is free, also for a failed or succeeded delivery; the lease of
     * an attempt in flight still holds, so two never run at once.
     */
    async retry(endpointId: string, deliveryId: string) {
      const [row] = await db
        .update(webhookDeliveries)
        .set({ status: "pending", nextAttemptAt: sql`now()` })
        .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.endpointId, endpointId)))
        .returning();
      if (!row) throw new NotFound("delivery");
      return toDelivery(row);
    },
  };
}

export type WebhookService = ReturnType<typeof webhookService>;
