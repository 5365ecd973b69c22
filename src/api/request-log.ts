import { Elysia, StatusMap } from "elysia";
import type { Logger } from "../log";
import { httpRequestDuration } from "../metrics";
import { isUuid } from "../payouts/rules";

export const REQUEST_ID_HEADER = "x-request-id";
const REQUEST_ID = /^[\x21-\x7E]{1,128}$/;

/** The client's X-Request-Id when it is 1 to 128 visible ASCII characters, else a new UUID. */
export function requestId(headers: Headers): string {
  const given = headers.get(REQUEST_ID_HEADER);
  return given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

// Anything else a client sends is counted as "other": label values must stay few.
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const HEALTH_PROBE = /^\/health\//;

type Status = number | keyof typeof StatusMap;

/** The path of a request's URL, without the query (cheaper than `new URL` on every request). */
export function pathOf(url: string): string {
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const queryStart = url.indexOf("?", pathStart);
  return url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
}

/** The payout a route's `:id` names, for log lines; undefined when it is not a payout id. */
export const payoutIdParam = (params: Record<string, string | undefined> | undefined): string | undefined =>
  typeof params?.id === "string" && isUuid(params.id) ? params.id.toLowerCase() : undefined;

// What the log line needs to know of a request, kept on the request itself: when it started, and
// the payout it turned out to be about when its path does not name it (a create). A property, not
// a WeakMap: a weak entry per request is work for every garbage collection.
const LOGGED = Symbol("request log");
type Logged = { started: number; payoutId?: string };
type LoggedRequest = Request & { [LOGGED]?: Logged };
const logged = (request: Request) => (request as LoggedRequest)[LOGGED];

/** Names the payout a request is about, for its log line. */
export function aboutPayout(request: Request, payoutId: string): void {
  const entry = logged(request);
  if (entry) entry.payoutId = payoutId;
}

/**
 * Every request gets an id (X-Request-Id, echoed on every response: Elysia merges `set.headers`
 * into handler and onError responses alike), one log line and one observation of
 * http_request_duration_seconds. The line names the route pattern and the raw path, never the
 * query or the body: they may carry recipient details.
 */
export function requestLog(log: Logger) {
  return new Elysia()
    .onRequest(({ request, set }) => {
      (request as LoggedRequest)[LOGGED] = { started: performance.now() };
      set.headers[REQUEST_ID_HEADER] = requestId(request.headers);
    })
    .onAfterResponse({ as: "global" }, ({ request, route, params, set, responseValue }) => {
      const entry = logged(request);
      const seconds = (performance.now() - (entry?.started ?? performance.now())) / 1000;
      // A handler's Response carries its status; an onError response is recorded in set.status.
      const raw: Status = responseValue instanceof Response ? responseValue.status : (set.status ?? 200);
      const status = typeof raw === "number" ? raw : StatusMap[raw];
      const method = METHODS.has(request.method) ? request.method : "other";
      const pattern = route || "unmatched";
      httpRequestDuration.observe(seconds, { method, route: pattern, status: `${status}` });

      // The payout a request is about: its path's id, or the one its handler named (a create).
      const payoutId = payoutIdParam(params) ?? entry?.payoutId;
      // Probes arrive every few seconds from every orchestrator: their lines only at debug.
      (HEALTH_PROBE.test(pattern) ? log.debug : log.info)("request", {
        request_id: set.headers[REQUEST_ID_HEADER],
        method: request.method,
        route: pattern,
        path: pathOf(request.url),
        status,
        duration_ms: Math.round(seconds * 10_000) / 10,
        ...(payoutId ? { payout_id: payoutId } : {}),
      });
    });
}
