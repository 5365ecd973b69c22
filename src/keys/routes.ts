import { Type } from "@sinclair/typebox";
import { type DocumentDecoration, Elysia } from "elysia";
import { ValidationFailed } from "../errors";
import { PageQueryParams } from "../events/model";
import { readJsonBody } from "../http/body";
import { type FeatureDocs, queryParameters } from "../http/openapi";
import { responses } from "../http/responses";
import { json, pathId } from "../http/route";
import { Enum } from "../lib/kinds";
import { callerOf } from "./auth";
import { ApiKeyIdParam, KEY_SCHEMAS, SCOPES } from "./model";
import type { KeyService } from "./service";
import { validateCreateKey, validateKeyListQuery, validateRollKey } from "./validation";

const BASE = "/api/keys";

/** An id from the path: anything but a UUID names no key. */
const keyId = (raw: string) => pathId(raw, "API key");

const content = (schema: string) => ({ "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } });

/**
 * A keys operation. The bearer scheme, the scope keys:manage (in the description and x-scopes),
 * 401 and 403 are the app's to add, from the guard that enforces them (src/http/openapi.ts).
 */
const operation = (summary: string, description: string, success: Record<number, object>, errors: number[]) => {
  const answers = responses(success, errors) as Record<string, { description: string }>;
  if (answers[404])
    answers[404] = { ...answers[404], description: "No such API key (also for an id that is not a UUID)" };
  if (answers[409]) answers[409] = { ...answers[409], description: "The key's state forbids the change" };
  return { tags: ["keys"], summary, description, responses: answers };
};

const docs = {
  create: {
    ...operation(
      "Create an API key",
      "The answer is the only one that shows the secret. A key can grant only scopes it holds itself (403 naming the first it lacks).",
      {
        201: {
          description: "Created, with its secret",
          content: content("ApiKeyWithSecret"),
          headers: { Location: { required: true, description: "The key's URL", schema: { type: "string" } } },
        },
      },
      [400, 413, 415],
    ),
    requestBody: { required: true, content: content("CreateApiKey") },
  },
  list: {
    ...operation(
      "List API keys, newest first",
      "Revoked keys included. Keyset (cursor) pagination. Unknown or repeated query parameters are a 400. Never a secret.",
      { 200: { description: "A page", content: content("ApiKeyPage") } },
      [400],
    ),
    parameters: queryParameters(PageQueryParams),
  },
  get: operation(
    "Read an API key (never its secret)",
    "Also a revoked key: its id still resolves.",
    { 200: { description: "The key", content: content("ApiKey") } },
    [404],
  ),
  roll: {
    ...operation(
      "Roll an API key's secret",
      "A new secret for the same id and scopes, shown only in this answer. The secret before it keeps working for expires_in_ms (a day by default; 0: it stops at once, on other api replicas within API_KEY_CACHE_TTL_MS). Rolling a key needs every scope it holds. A revoked key cannot be rolled (409).",
      { 200: { description: "The key with its new secret", content: content("ApiKeyWithSecret") } },
      [400, 404, 409, 413, 415],
    ),
    requestBody: { required: false, content: content("RollApiKey") },
  },
  revoke: operation(
    "Revoke an API key",
    "The key stops working at once on this api replica and within API_KEY_CACHE_TTL_MS on every other. The key is kept, revoked, so its id still resolves. A key cannot revoke itself (409). Revoking a revoked key changes nothing.",
    { 204: { description: "Revoked" } },
    [404, 409],
  ),
  // TypeBox schemas are JSON Schema objects, wider than openapi-types' static types.
} as unknown as Record<"create" | "list" | "get" | "roll" | "revoke", DocumentDecoration>;

/** What the keys feature adds to the document besides its operations. */
export const keysDocument: FeatureDocs = {
  tags: [{ name: "keys", description: "API keys and their scopes (each needs keys:manage)" }],
  schemas: KEY_SCHEMAS,
  problemFields: {
    scope: Type.Optional(Enum(SCOPES, { description: "With missing_scope: the scope the API key lacks." })),
  },
};

const isRoll = (path: string) => /\/roll\/?$/.test(path);
// Bun's server gives a request without Content-Length nor Transfer-Encoding a null body (RFC 9112 6.3).
const hasNoBody = ({ body, headers }: Request) => body === null || headers.get("content-length") === "0";

/**
 * The keys API (docs: access-control). Needs bearerAuth in front of it: every handler acts for
 * callerOf(request), and bearerAuth has checked keys:manage before any of them runs.
 */
export function keyRoutes(service: KeyService) {
  return new Elysia({ name: "keys" })
    .onParse(({ request }) => {
      if (request.method !== "POST") return;
      // A roll's body is optional: none is the default overlap.
      if (isRoll(new URL(request.url).pathname) && hasNoBody(request)) return {};
      return readJsonBody(request);
    })
    .post(
      `${BASE}/`,
      async ({ request, body }) => {
        const input = validateCreateKey(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        const created = await service.create(input.value, callerOf(request));
        return json(created, 201, { location: `${BASE}/${created.id}/` });
      },
      { detail: docs.create },
    )
    .get(
      `${BASE}/`,
      async ({ request }) => {
        const query = validateKeyListQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.list(query.value), 200);
      },
      { detail: docs.list },
    )
    .get(`${BASE}/:id/`, async ({ params }) => json(await service.get(keyId(params.id)), 200), {
      params: ApiKeyIdParam,
      detail: docs.get,
    })
    .post(
      `${BASE}/:id/roll`,
      async ({ params, request, body }) => {
        const id = keyId(params.id);
        const input = validateRollKey(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        return json(await service.roll(id, input.value, callerOf(request)), 200);
      },
      { params: ApiKeyIdParam, detail: docs.roll },
    )
    .delete(
      `${BASE}/:id/`,
      async ({ params, request }) => {
        await service.revoke(keyId(params.id), callerOf(request));
        return new Response(null, { status: 204 });
      },
      { params: ApiKeyIdParam, detail: docs.revoke },
    );
}
