import { loadConfig } from "../../src/config";
import type { Database } from "../../src/db/client";
import { createApp } from "../../src/http/app";
import { type Clock, systemClock } from "../../src/lib/clock";
import { apiPlugins } from "../../src/roles/http-features";
import { webhookSettings } from "../../src/roles/options";
import type { WebhookSettings } from "../../src/webhooks/service";
import { quiet } from "./log";

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
    createDeadlineMs?: number;
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
    log: quiet,
    brokerConnected: () => options.brokerConnected ?? true,
    features: apiPlugins(
      { database, clock: options.clock ?? systemClock, log: quiet, onCreated },
      {
        idempotencyKeyTtlMs: options.idempotencyKeyTtlMs ?? loadConfig({}).idempotencyKeyTtlMs,
        createDeadlineMs: options.createDeadlineMs ?? loadConfig({}).createDeadlineMs,
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

/** A sample's value in a Prometheus text exposition, 0 when the series is absent. */
export function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
