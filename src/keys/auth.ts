import { Elysia } from "elysia";
import { MissingScope } from "../errors";
import { domainProblem, type Problem, problemResponse, UNAUTHORIZED } from "../http/problem";
import { pathOf } from "../http/request-log";
import type { Scope } from "./model";
import type { Caller, KeyService } from "./service";

/** The paths that need no key: probes, the document and its UI, the metrics (docs: access-control). */
export const isOpenPath = (path: string) => /^\/(?:health\/|swagger(?:\/|$)|metrics\/?$)/.test(path);

const READS = new Set(["GET", "HEAD"]);

/**
 * The scope each /api route needs, as data: [path pattern, scope by method]. The trailing slash
 * is optional, as it is for the router. A method a path does not take still needs the path's
 * scope for writing: it learns that it is a 405 only once it may write there.
 */
const ROUTE_SCOPES: readonly [RegExp, (method: string) => Scope][] = [
  [/^\/api\/payouts\/[^/]+\/events\/?$/, () => "events:read"],
  [/^\/api\/payouts(?:\/[^/]+)?\/?$/, (method) => (READS.has(method) ? "payouts:read" : "payouts:write")],
  [/^\/api\/events\/?$/, () => "events:read"],
  [/^\/api\/webhook-endpoints(?:\/.*)?$/, () => "webhooks:manage"],
  [/^\/api\/keys(?:\/.*)?$/, () => "keys:manage"],
];

/** The scope a request needs; undefined for a path no route answers (a 404 once authenticated). */
export function scopeFor(method: string, path: string): Scope | undefined {
  for (const [pattern, scope] of ROUTE_SCOPES) if (pattern.test(path)) return scope(method);
  return undefined;
}

const unauthorized = () => problemResponse(UNAUTHORIZED, { "www-authenticate": 'Bearer realm="payouts"' });
const forbidden = (scope: Scope) => problemResponse(domainProblem(new MissingScope(scope)) as Problem);

// The caller, kept on the request itself: a property, not a WeakMap (see src/http/request-log.ts).
const CALLER = Symbol("caller");
type AuthenticatedRequest = Request & { [CALLER]?: Caller };

/**
 * The key that authenticated the request. Throws when the route is not behind bearerAuth: a
 * handler that needs its caller fails closed rather than acting for nobody.
 */
export function callerOf(request: Request): Caller {
  const caller = (request as AuthenticatedRequest)[CALLER];
  if (!caller) throw new Error("no authenticated caller: the route is not behind bearerAuth");
  return caller;
}

/**
 * Bearer API keys on every path but the open ones. Runs in onRequest, before routing, body
 * parsing and validation: an unauthenticated request learns nothing about a body's shape or
 * whether an id exists, and a refused one costs no body read. 401 (every refusal alike, with
 * WWW-Authenticate) or 403 naming the missing scope; otherwise the caller is kept for callerOf.
 * Paths outside the open ones and outside /api also need a key: no route can be added unguarded.
 *
 * `answered` is told of each refusal (the request log tags and logs it, as for any early answer).
 */
export function bearerAuth({
  keys,
  isOpen = isOpenPath,
  answered,
}: {
  keys: Pick<KeyService, "authenticate">;
  isOpen?: (path: string) => boolean;
  answered?: (request: Request, response: Response) => void;
}) {
  const refuse = (request: Request, response: Response) => {
    answered?.(request, response);
    return response;
  };
  return new Elysia().onRequest(async ({ request }) => {
    const path = pathOf(request.url);
    if (isOpen(path)) return;
    const caller = await keys.authenticate(request.headers.get("authorization"));
    if (!caller) return refuse(request, unauthorized());
    const scope = scopeFor(request.method, path);
    if (scope && !caller.scopes.includes(scope)) return refuse(request, forbidden(scope));
    (request as AuthenticatedRequest)[CALLER] = caller;
  });
}
