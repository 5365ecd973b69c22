import { loadConfig } from "../../src/config";
import type { Database } from "../../src/db/client";
import { createApp } from "../../src/http/app";
import { pathOf } from "../../src/http/request-log";
import { isOpenPath } from "../../src/keys/auth";
import { BOOTSTRAP, SCOPES, type Scope } from "../../src/keys/model";
import { keyService } from "../../src/keys/service";
import { type Clock, systemClock } from "../../src/lib/clock";
import type { Logger } from "../../src/lib/log";
import { apiGuard, apiPlugins } from "../../src/roles/http-features";
import { webhookSettings } from "../../src/roles/options";
import { type SecretBox, secretBox } from "../../src/webhooks/secret-box";
import type { WebhookSettings } from "../../src/webhooks/service";
import { quiet } from "./log";

/**
 * The WEBHOOK_SECRET_KEYS of every test (a fixed key, for tests only): processes spawned by
 * test/kit/processes.ts get it in their environment, and testApi seals with it, so an endpoint
 * one of them makes is readable by the others.
 */
export const TEST_SECRET_KEYS = `test:${Buffer.alloc(32, 7).toString("base64")}`;

/** The box that seals and opens signing secrets under TEST_SECRET_KEYS. */
export const testBox = (): SecretBox =>
  secretBox(loadConfig({ WEBHOOK_SECRET_KEYS: TEST_SECRET_KEYS }).webhookSecretKeys ?? []);

/** The webhook settings where tests run their receivers: on loopback, over plain http. */
export const LOCAL_WEBHOOKS = { allowPrivateNetworks: true, allowHttp: true } as const;

/** A key on `database` made as the keys role makes one (created_by bootstrap); its token. */
export async function createKey(database: Database, scopes: readonly Scope[], name = "test"): Promise<string> {
  const keys = keyService({ db: database.db, clock: systemClock, log: quiet }, { cacheTtlMs: 0 });
  return (await keys.create({ name, scopes: [...scopes] }, BOOTSTRAP)).secret;
}

const admins = new WeakMap<Database, Promise<string>>();

/** A key with every scope, made once per Database (the tests' administrator). */
export function adminKey(database: Database): Promise<string> {
  let key = admins.get(database);
  if (!key) {
    key = createKey(database, SCOPES, "test admin");
    admins.set(database, key);
  }
  return key;
}

/** The Authorization header of a key. */
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/**
 * The api in-process (no socket), behind its bearer guard like the roles' api: each request sends
 * the admin key (every scope) unless `key` says otherwise (null: none) or the request's own
 * headers name an `authorization`; `handle` is app.handle so. `key()` is the key sent. `handedOff` records the ids given to processing, in order;
 * `onCreated` also gives them to a real outbox when a test processes them. `keyDatabase` holds
 * the keys when `database` cannot (one that is unreachable on purpose).
 */
export function testApi(
  database: Database,
  options: {
    brokerConnected?: boolean;
    onCreated?: (id: string) => void;
    idempotencyKeyTtlMs?: number;
    createDeadlineMs?: number;
    webhooks?: WebhookSettings;
    box?: SecretBox;
    clock?: Clock;
    log?: Logger;
    key?: string | null;
    keyDatabase?: Database;
  } = {},
) {
  const log = options.log ?? quiet;
  const keyDatabase = options.keyDatabase ?? database;
  const keys = keyService(
    { db: keyDatabase.db, availability: keyDatabase.availability, clock: systemClock, log },
    { cacheTtlMs: loadConfig({}).apiKeyCacheTtlMs },
  );
  const handedOff: string[] = [];
  const onCreated = (id: string) => {
    handedOff.push(id);
    options.onCreated?.(id);
  };
  const app = createApp({
    database,
    log,
    brokerConnected: () => options.brokerConnected ?? true,
    guard: apiGuard(keys),
    features: apiPlugins(
      { database, clock: options.clock ?? systemClock, log, keys, box: options.box ?? testBox(), onCreated },
      {
        idempotencyKeyTtlMs: options.idempotencyKeyTtlMs ?? loadConfig({}).idempotencyKeyTtlMs,
        createDeadlineMs: options.createDeadlineMs ?? loadConfig({}).createDeadlineMs,
        webhooks: options.webhooks ?? webhookSettings(loadConfig({})),
      },
    ),
  });
  const keyOf = async () => (options.key === undefined ? adminKey(keyDatabase) : options.key);
  /** app.handle, with the key unless the request names an authorization of its own. */
  const handle = async (request: Request) => {
    // An open path needs no key: one is not made for a database a health test has taken away.
    if (!request.headers.has("authorization") && !isOpenPath(pathOf(request.url))) {
      const key = await keyOf();
      if (key !== null) request.headers.set("authorization", `Bearer ${key}`);
    }
    return app.handle(request);
  };
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    }
    const response = await handle(new Request(`http://payouts.test${path}`, init));
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
  return { app, handle, request, handedOff, keys, key: keyOf };
}

/** A sample's value in a Prometheus text exposition, 0 when the series is absent. */
export function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
