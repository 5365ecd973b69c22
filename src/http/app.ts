import { type AnyElysia, Elysia } from "elysia";
import type { Database } from "../db/client";
import type { Logger } from "../lib/log";
import { metricsResponse, registry } from "../metrics";
import { healthDocs, healthRoutes } from "./health";
import { type FeatureDocs, openapiDocs } from "./openapi";
import { HttpProblem, problem, problemResponse, toProblem } from "./problem";
import { pathOf, payoutIdParam, requestIdOf, requestLog } from "./request-log";
import { swaggerUi } from "./swagger-ui";

/** A feature's HTTP part: its routes (one Elysia instance) and what it adds to the document. */
export type Feature = { routes: AnyElysia; docs: FeatureDocs };

/**
 * Access control in front of every route (the roles pass the keys feature's bearer plugin): its
 * plugin answers in onRequest, before routing, body parsing and validation; `answered` logs and
 * tags each refusal as for any early answer. `scopeOf` is the scope a request needs (undefined: an
 * open path, or one no route answers), which the document states for each operation it guards.
 */
export type Guard = {
  plugin: (answered: (request: Request, response: Response) => void) => AnyElysia;
  scopeOf: (method: string, path: string) => string | undefined;
};

type AppDeps = {
  /** For /health/ready: the database answers and holds this build's schema. */
  database: Database;
  log: Logger;
  /** The broker's state for /health/ready: reported, but never makes the api unready. */
  brokerConnected: () => boolean;
  /** The features served, in the order the document lists them. */
  features: Feature[];
  /** Without one, every route is open (tests of the edge alone). */
  guard?: Guard;
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
function allowedMethods(routes: readonly { method: string; path: string }[]): [RegExp, string][] {
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
    return problemResponse(problem("method_not_allowed", `${request.method} is not allowed here; use ${allow}`), {
      allow,
    });
  }
  return problemResponse(problem("not_found", `no route for ${path}`));
}

/** The api's app: the edge (request log, problems, document, health, metrics), then the features. */
export function createApp({ database, log, brokerConnected, features, guard }: AppDeps) {
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
      const response = problemResponse(problem("invalid_host", "the Host header must name a host"));
      requests.answered(request, "", undefined, response, set);
      return response;
    })
    .onError(({ code, error, request, route, params, set }) => {
      const answer = () => {
        if (code === "NOT_FOUND") return notFoundOrNotAllowed(request, allowTable);
        if (code === "PARSE") {
          // Elysia wraps whatever the body reader throws in its ParseError: a 413 or 415 stays one.
          if (error.cause instanceof HttpProblem) return problemResponse(error.cause.problem);
          return problemResponse(problem("invalid_json", "the body could not be parsed"));
        }
        return toProblem(error, log, {
          request_id: requestIdOf(request),
          method: request.method,
          route,
          path: pathOf(request.url),
          payout_id: payoutIdParam(params),
        });
      };
      const response = answer();
      requests.answered(request, route, params, response, set);
      return response;
    });
  // After the Host check (whose re-handled request passes here once), before every route.
  if (guard) {
    app.use(guard.plugin((request, response) => requests.answered(request, "", undefined, response, { headers: {} })));
  }
  app
    .use(openapiDocs([...features.map((feature) => feature.docs), healthDocs], guard?.scopeOf))
    .use(swaggerUi((request) => handle(request)))
    .use(healthRoutes({ database, brokerConnected }))
    // Prometheus text format; in role `all` it includes the in-process worker's metrics.
    .get("/metrics", () => metricsResponse(registry), { detail: { hide: true } });
  for (const feature of features) app.use(feature.routes);
  handle = app.handle;
  allowTable = allowedMethods(app.routes);
  return app;
}
