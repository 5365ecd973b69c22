import { Elysia, StatusMap } from "elysia";
import type { Logger } from "../lib/log";
import { isUuid } from "../lib/uuid";
import { httpRequestDuration } from "../metrics";

const REQUEST_ID_HEADER = "x-request-id";
const REQUEST_ID = /^[\x21-\x7E]{1,128}$/;

/** The client's X-Request-Id when it is 1 to 128 visible ASCII characters, else a new UUID. */
function requestId(headers: Headers): string {
  const given = headers.get(REQUEST_ID_HEADER);
  return given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

// Anything else a client sends is counted as "other": label values must stay few.
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const HEALTH_PROBE = /^\/health\//;

type Status = number | keyof typeof StatusMap;

/** The path of a request's URL, without the query (cheaper than `new URL` on every request). */
export function pathOf(url: string): string {
  // A relative URL (Bun leaves it so when the Host header is not a host name) is all path.
  const pathStart = url.startsWith("/") ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  const queryStart = url.indexOf("?", pathStart);
  return url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
}

/** The payout a route's `:id` names, for log lines; undefined when it is not a payout id. */
export const payoutIdParam = (params: Record<string, string | undefined> | undefined): string | undefined =>
  typeof params?.id === "string" && isUuid(params.id) ? params.id.toLowerCase() : undefined;

// What the log line needs to know of a request, kept on the request itself: when it started, its
// id, and the payout it turned out to be about when its path does not name it (a create). A
// property, not a WeakMap: a weak entry per request is work for every garbage collection.
const LOGGED = Symbol("request log");
type Logged = { started: number; id: string; payoutId?: string };
type LoggedRequest = Request & { [LOGGED]?: Logged };
const logged = (request: Request) => (request as LoggedRequest)[LOGGED];

/** Names the payout a request is about, for its log line. */
export function aboutPayout(request: Request, payoutId: string): void {
  const entry = logged(request);
  if (entry) entry.payoutId = payoutId;
}

/** The request's id (X-Request-Id), once the request log has seen it. */
export const requestIdOf = (request: Request): string | undefined => logged(request)?.id;

/**
 * Every request gets an id (X-Request-Id, echoed on every response), one log line and one
 * observation of http_request_duration_seconds. The line names the route pattern and the raw
 * path, never the query or the body: they may carry recipient details.
 *
 * `plugin` sees each request arrive and each handler's answer; a response made outside a handler
 * (onError, an early answer of onRequest) is passed to `answered` by whoever made it. The id goes
 * onto the handler's Response itself: through Elysia's `set.headers` it would copy every
 * response into a new one with a streamed body, and a hook after the response costs a
 * setImmediate per request (together about 8 us of the api's 70 per create, bench/RESULTS.md).
 */
export function requestLog(log: Logger) {
  /** Tags `response` (or, for a handler's plain value, `set`) with the request's id and logs it. */
  const answered = (
    request: Request,
    route: string,
    params: Record<string, string | undefined> | undefined,
    response: unknown,
    set: { headers: Record<string, unknown>; status?: Status },
  ) => {
    const entry = logged(request);
    if (!entry) return;
    const seconds = (performance.now() - entry.started) / 1000;
    let raw: Status;
    if (response instanceof Response) {
      response.headers.set(REQUEST_ID_HEADER, entry.id);
      raw = response.status;
    } else {
      set.headers[REQUEST_ID_HEADER] = entry.id;
      raw = set.status ?? 200;
    }
    const status = typeof raw === "number" ? raw : StatusMap[raw];
    const method = METHODS.has(request.method) ? request.method : "other";
    const pattern = route || "unmatched";
    httpRequestDuration.observe(seconds, { method, route: pattern, status: `${status}` });

    // The payout a request is about: its path's id, or the one its handler named (a create).
    const payoutId = payoutIdParam(params) ?? entry.payoutId;
    // Probes arrive every few seconds from every orchestrator: their lines only at debug.
    (HEALTH_PROBE.test(pattern) ? log.debug : log.info)("request", {
      request_id: entry.id,
      method: request.method,
      route: pattern,
      path: pathOf(request.url),
      status,
      duration_ms: Math.round(seconds * 10_000) / 10,
      ...(payoutId ? { payout_id: payoutId } : {}),
    });
  };
  const plugin = new Elysia()
    .onRequest(({ request }) => {
      (request as LoggedRequest)[LOGGED] = { started: performance.now(), id: requestId(request.headers) };
    })
    .onAfterHandle({ as: "global" }, ({ request, route, params, set, responseValue }) => {
      answered(request, route, params, responseValue, set);
    });
  return { plugin, answered };
}
