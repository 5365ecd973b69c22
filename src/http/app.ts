import { Elysia } from "elysia";
import type { Database } from "../db/client";
import { schemaCheck } from "../db/migrate";
import { eventRoutes } from "../events/routes";
import { eventService } from "../events/service";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/log";
import { metricsResponse, registry } from "../metrics";
import { payoutRoutes } from "../payouts/routes";
import { payoutService } from "../payouts/service";
import { webhookRoutes } from "../webhooks/routes";
import { type WebhookSettings, webhookService } from "../webhooks/service";
import { docs, type HealthReady, openapiDocs, swaggerHtml } from "./openapi";
import { HttpProblem, problemResponse, toProblem } from "./problem";
import { pathOf, payoutIdParam, requestIdOf, requestLog } from "./request-log";

export type ApiDeps = {
  database: Database;
  clock: Clock;
  log: Logger;
  /** Hands a committed payout to processing; never throws. */
  onCreated: (id: string) => void;
  /** The broker's state for /health/ready: reported, but never makes the api unready. */
  brokerConnected: () => boolean;
  /** IDEMPOTENCY_KEY_TTL_MS: how long a key stays bound to its first response. */
  idempotencyKeyTtlMs: number;
  /** CREATE_DEADLINE_MS: how long a create may take to commit (src/payouts/service.ts). */
  createDeadlineMs: number;
  webhooks: WebhookSettings;
};

const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const methodRank = (method: string) => {
  const rank = METHOD_ORDER.indexOf(method);
  return rank === -1 ? METHOD_ORDER.length : rank;
};

/**
 * The app's own routes as path matchers, each with the methods it answers (its `Allow`): a known
 * path with another method is a 405, not a 404. Read from the routes themselves, so that no route
 * can be left out. The trailing slash is optional, as it is for the router.
 */
export function allowedMethods(routes: readonly { method: string; path: string }[]): [RegExp, string][] {
  const byPattern = new Map<string, Set<string>>();
  for (const { method, path } of routes) {
    const pattern = path
      .replace(/\/$/, "")
      .split("/")
      .map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/");
    byPattern.set(pattern, (byPattern.get(pattern) ?? new Set()).add(method));
  }
  return [...byPattern].map(([pattern, methods]) => [
    new RegExp(`^${pattern}/?$`),
    [...methods].sort((a, b) => methodRank(a) - methodRank(b)).join(", "),
  ]);
}

function notFoundOrNotAllowed(request: Request, allowTable: [RegExp, string][]): Response {
  const path = pathOf(request.url);
  const allow = allowTable.find(([pattern]) => pattern.test(path))?.[1];
  if (allow) {
    return problemResponse(
      {
        status: 405,
        code: "method_not_allowed",
        title: "Method not allowed",
        detail: `${request.method} is not allowed here; use ${allow}`,
      },
      { allow },
    );
  }
  return problemResponse({ status: 404, code: "not_found", title: "Not found", detail: `no route for ${path}` });
}

export function createApp({
  database,
  clock,
  log,
  onCreated,
  brokerConnected,
  idempotencyKeyTtlMs,
  createDeadlineMs,
  webhooks,
}: ApiDeps) {
  const schemaCurrent = schemaCheck(database.db);
  // /swagger/?format=openapi answers with the document that /swagger/json serves.
  let handle = (_: Request): Promise<Response> => Promise.reject(new Error("app not built"));
  let allowTable: [RegExp, string][] = [];
  // The Host header plays no part in routing: Elysia's default finds the path after at least four
  // characters of host name, so `Host: api` (a Kubernetes Service named api) routed nowhere. The
  // path is found after "http://" instead: the server speaks plain HTTP, TLS ends before it.
  const requests = requestLog(log);
  const app = new Elysia({ handler: { standardHostname: false } })
    .use(requests.plugin)
    .onRequest(({ request, set }) => {
      if (request.url.startsWith("http://")) return;
      // Bun leaves the URL relative when the Host header is absent, empty or not a host name.
      // Absent is HTTP/1.0, which has no Host: HAProxy's default `httpchk` and other probes send
      // `GET /health/live HTTP/1.0` and nothing else. The request is answered as if it had named
      // this server (the host plays no part in routing), so that the handlers' `new URL(request.url)`
      // holds; Bun does not tell the handler the version, so an HTTP/1.1 request without a Host
      // is served the same way. Only the first hop sees this: the inner request is absolute.
      if (!request.headers.has("host")) {
        return handle(new Request(`http://localhost${request.url}`, request));
      }
      // Present but empty or not a host name: RFC 9112's 400 for an invalid Host.
      const response = problemResponse({
        status: 400,
        code: "invalid_host",
        title: "Bad request",
        detail: "the Host header must name a host",
      });
      requests.answered(request, "", undefined, response, set);
      return response;
    })
    .onError(({ code, error, request, route, params, set }) => {
      const problem = () => {
        if (code === "NOT_FOUND") return notFoundOrNotAllowed(request, allowTable);
        if (code === "PARSE") {
          // Elysia wraps whatever the body reader throws in its ParseError: a 413 or 415 stays one.
          if (error.cause instanceof HttpProblem) return problemResponse(error.cause.problem);
          return problemResponse({
            status: 400,
            code: "invalid_json",
            title: "Invalid JSON",
            detail: "the body could not be parsed",
          });
        }
        return toProblem(error, log, {
          request_id: requestIdOf(request),
          method: request.method,
          route,
          path: pathOf(request.url),
          payout_id: payoutIdParam(params),
        });
      };
      const response = problem();
      requests.answered(request, route, params, response, set);
      return response;
    })
    .use(openapiDocs)
    .get(
      "/swagger",
      ({ query, request }) =>
        query.format === "openapi"
          ? handle(new Request(new URL("/swagger/json", request.url).href))
          : new Response(swaggerHtml, { headers: { "content-type": "text/html; charset=utf-8" } }),
      { detail: { hide: true } },
    )
    .get("/health/live", () => ({ status: "ok" as const }), { detail: docs.live })
    // Ready means usable: the database answers and holds every migration this build knows, so that
    // during a rollout no pod serves on an older schema.
    .get(
      "/health/ready",
      async ({ set }): Promise<HealthReady> => {
        const db = !(await database.ping()) ? "down" : (await schemaCurrent()) ? "up" : "schema behind";
        set.status = db === "up" ? 200 : 503;
        return {
          status: db === "up" ? "ready" : "unavailable",
          database: db,
          broker: brokerConnected() ? "up" : "down",
        };
      },
      { detail: docs.ready },
    )
    // Prometheus text format; in role `all` it includes the in-process worker's metrics.
    .get("/metrics", () => metricsResponse(registry), { detail: { hide: true } })
    .use(
      payoutRoutes(
        payoutService(
          { db: database.db, availability: database.availability, clock, log },
          { idempotencyKeyTtlMs, createDeadlineMs },
        ),
        onCreated,
      ),
    )
    .use(eventRoutes(eventService({ db: database.db })))
    .use(webhookRoutes(webhookService({ db: database.db }, webhooks)));
  handle = app.handle;
  allowTable = allowedMethods(app.routes);
  return app;
}
