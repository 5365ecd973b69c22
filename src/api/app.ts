import { Elysia } from "elysia";
import type { Database } from "../db/client";
import { AppError } from "../errors";
import type { Logger } from "../log";
import { metricsResponse, registry } from "../metrics";
import { payoutService } from "../payouts/service";
import { openapiDocs, swaggerHtml } from "./openapi";
import { payoutRoutes } from "./payouts";
import { problemResponse, toProblem } from "./problem";
import { payoutIdParam, REQUEST_ID_HEADER, requestLog } from "./request-log";

export type ApiDeps = {
  database: Database;
  log: Logger;
  /** Hands a committed payout to processing; never throws. */
  onCreated: (id: string) => void;
  /** The broker's state for /health/ready: reported, but never makes the api unready. */
  brokerConnected: () => boolean;
};

// Known paths and their methods: a known path with another method is a 405, not a 404.
const KNOWN_PATHS: [RegExp, string][] = [
  [/^\/api\/payouts\/?$/, "GET, POST"],
  [/^\/api\/payouts\/[^/]+\/?$/, "GET, PATCH, DELETE"],
  [/^\/swagger(\/json)?\/?$/, "GET"],
  [/^\/health\/(live|ready)\/?$/, "GET"],
  [/^\/metrics\/?$/, "GET"],
];

function notFoundOrNotAllowed(request: Request): Response {
  const path = new URL(request.url).pathname;
  const allow = KNOWN_PATHS.find(([pattern]) => pattern.test(path))?.[1];
  if (allow) {
    return problemResponse(
      new AppError(
        405,
        "method_not_allowed",
        "Method not allowed",
        `${request.method} is not allowed here; use ${allow}`,
      ),
      { allow },
    );
  }
  return problemResponse(new AppError(404, "not_found", "Not found", `no route for ${path}`));
}

export function createApp({ database, log, onCreated, brokerConnected }: ApiDeps) {
  // /swagger/?format=openapi answers with the document that /swagger/json serves.
  let handle = (_: Request): Promise<Response> => Promise.reject(new Error("app not built"));
  const app = new Elysia()
    .use(requestLog(log))
    .onError(({ code, error, request, route, params, set }) => {
      const problem = () => {
        if (code === "NOT_FOUND") return notFoundOrNotAllowed(request);
        if (code === "PARSE") {
          // Elysia wraps whatever the body reader throws in its ParseError: a 413 or 415 stays one.
          if (error.cause instanceof AppError) return problemResponse(error.cause);
          return problemResponse(new AppError(400, "invalid_json", "Invalid JSON", "the body could not be parsed"));
        }
        return toProblem(error, log, {
          request_id: set.headers[REQUEST_ID_HEADER],
          method: request.method,
          route,
          path: new URL(request.url).pathname,
          payout_id: payoutIdParam(params),
        });
      };
      const response = problem();
      // Elysia does not record a Response returned here: the request log reads its status from set.
      set.status = response.status;
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
    .get("/health/live", () => ({ status: "ok" }))
    .get("/health/ready", async ({ set }) => {
      const databaseUp = await database.ping();
      set.status = databaseUp ? 200 : 503;
      return {
        status: databaseUp ? "ready" : "unavailable",
        database: databaseUp ? "up" : "down",
        broker: brokerConnected() ? "up" : "down",
      };
    })
    // Prometheus text format; in role `all` it includes the in-process worker's metrics.
    .get("/metrics", () => metricsResponse(registry), { detail: { hide: true } })
    .use(payoutRoutes(payoutService(database.db), onCreated));
  handle = app.handle;
  return app;
}
