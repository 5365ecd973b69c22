import { sql } from "drizzle-orm";
import { loadConfig } from "../src/config";
import { connectPostgres, type Database } from "../src/db/client";
import { createApp } from "../src/http/app";
import { type Clock, systemClock } from "../src/lib/clock";
import { createLogger } from "../src/lib/log";
import { apiPlugins } from "../src/roles/http-features";
import { type WebhookSettings, webhookSettings } from "../src/webhooks/service";

export const log = createLogger("error", "json");

/** A pool on the run's database (test/setup.ts). */
export function testDatabase(poolSize = 5): Database {
  return connectPostgres(process.env.DATABASE_URL as string, poolSize, "payouts-test");
}

/** Empties every table: for test files that count rows. */
export async function resetDatabase(database: Database): Promise<void> {
  await database.db.execute(
    sql`TRUNCATE payouts, payout_outbox, idempotency_keys, simulated_gateway_payments, payout_events, webhook_endpoints, webhook_deliveries`,
  );
}

/**
 * The api in-process (no socket): `handedOff` records the ids given to processing, in order;
 * `onCreated` also gives them to a real outbox when a test processes them.
 */
export function testApi(
  database: Database,
  options: {
    brokerConnected?: boolean;
    onCreated?: (id: string) => void;
    idempotencyKeyTtlMs?: number;
    webhooks?: WebhookSettings;
    clock?: Clock;
  } = {},
) {
  const handedOff: string[] = [];
  const onCreated = (id: string) => {
    handedOff.push(id);
    options.onCreated?.(id);
  };
  const app = createApp({
    database,
    log,
    brokerConnected: () => options.brokerConnected ?? true,
    features: apiPlugins(
      { database, clock: options.clock ?? systemClock, log, onCreated },
      {
        idempotencyKeyTtlMs: options.idempotencyKeyTtlMs ?? loadConfig({}).idempotencyKeyTtlMs,
        webhooks: options.webhooks ?? webhookSettings(loadConfig({})),
      },
    ),
  });
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    }
    const response = await app.handle(new Request(`http://payouts.test${path}`, init));
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    // biome-ignore lint/suspicious/noExplicitAny: tests read whatever the body holds
    return { status: response.status, headers: response.headers, body: json as any, text };
  };
  return { app, request, handedOff };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await Bun.sleep(everyMs);
  }
}

/**
 * Creates a payout on a running api over HTTP (201 expected) and waits until it reads COMPLETED;
 * returns it as the api shows it.
 */
export async function createAndAwaitCompleted(
  base: string,
  body: Record<string, unknown>,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const created = await fetch(`${base}/api/payouts/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  return eventually(async () => {
    const payout = (await (await fetch(`${base}/api/payouts/${id}/`)).json()) as Record<string, unknown>;
    return payout.status === "COMPLETED" ? payout : undefined;
  }, timeoutMs);
}

/**
 * Sends `request` (the raw bytes of one HTTP request: the version and headers exactly as a probe
 * or a proxy writes them) over a TCP connection of its own and reads until the server closes it.
 */
export async function rawHttp(port: number, request: string) {
  const chunks: Buffer[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_, data) => void chunks.push(Buffer.from(data)), close: () => resolve(), end: () => resolve() },
  });
  socket.write(request);
  await promise;
  const text = Buffer.concat(chunks).toString();
  const [head = "", body = ""] = text.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), head, body };
}
