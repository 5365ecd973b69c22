import { openapi } from "@elysiajs/openapi";
import type { TSchema } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { problemSchema } from "./problem";
import { header, problemContent, problemExample, ref, responses } from "./responses";

export { ref };

/*
 * The OpenAPI document at /swagger/json: assembled from the features' parts (their routes carry
 * their operations' detail), with the responses every operation shares, written once here.
 */

export const jsonContent = (schema: object) => ({ "application/json": { schema } });

/** OpenAPI query parameters from a query schema: the same schema validation reads. */
export const queryParameters = (schema: { properties: Record<string, object> }) =>
  Object.entries(schema.properties).map(([name, property]) => ({
    name,
    in: "query",
    required: false,
    schema: property,
  }));

/**
 * Where a route with a path parameter gives its query parameters: the OpenAPI plugin replaces
 * the `parameters` of such a route with the path parameters it makes, so completeDocument adds
 * these back.
 */
export const QUERY_PARAMETERS = "x-query-parameters";

const METHODS = ["get", "put", "post", "patch", "delete", "options", "trace"] as const;

/** The scope a request needs, as the guard in front of the routes decides it; undefined: open. */
type ScopeOf = (method: string, path: string) => string | undefined;

/**
 * An operation behind the guard: the bearer scheme, the scope stated twice (in its description
 * for readers, in x-scopes for tools), and the guard's own answers, 401 and 403 naming that scope.
 */
function guarded(operation: Operation, scope: string) {
  operation.security = [{ bearer: [] }];
  operation["x-scopes"] = [scope];
  operation.description = [operation.description, `Needs the scope ${scope}.`].filter(Boolean).join(" ");
  const { 401: unauthorized, 403: forbidden } = responses({}, [401, 403]) as Operation["responses"];
  operation.responses = {
    ...operation.responses,
    401: unauthorized as object,
    403: {
      ...forbidden,
      content: problemContent({
        missing_scope: {
          summary: "Missing scope",
          value: problemExample("missing_scope", `the API key lacks the scope ${scope}: this request needs it`, {
            scope,
          }),
        },
      }),
    },
  };
}

// A path of the document with a value in each {parameter}: what the guard is asked about.
const concretePath = (path: string) => path.replace(/\{[^}]+\}/g, "0");

/**
 * What holds for every operation, written once: each response carries X-Request-Id, each request
 * may send one, and each method a path does not take is a 405 naming the ones it does (the server
 * derives its Allow header from the same routes the document is generated from). With `scopeOf`,
 * each operation it guards (also a 405: the guard answers before the router) says so (guarded).
 */
function completeDocument(generated: Record<string, unknown>, scopeOf?: ScopeOf) {
  const doc = structuredClone(generated) as {
    paths: Record<string, Record<string, Operation>>;
    webhooks?: Record<string, Record<string, Operation>>;
  };
  // The requests this service sends carry no key of the receiver's: their signature proves them.
  if (scopeOf)
    for (const item of Object.values(doc.webhooks ?? {})) for (const op of Object.values(item)) op.security = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const allowed = METHODS.filter((method) => item[method]);
    const allow = allowed.map((method) => method.toUpperCase()).join(", ");
    const first = item[allowed[0] as string] as Operation;
    const pathParameters = (first.parameters ?? []).filter((p) => (p as { in?: string }).in === "path");
    for (const method of METHODS.filter((m) => !item[m])) {
      item[method] = {
        tags: first.tags,
        summary: `Not allowed: ${allow} only`,
        ...(pathParameters.length > 0 ? { parameters: pathParameters } : {}),
        operationId: `${method}${path.replace(/[^a-z]+/gi, "_")}not_allowed`,
        responses: {
          405: {
            description: "Method not allowed on this path",
            headers: {
              Allow: {
                required: true,
                description: "The methods this path takes",
                schema: { type: "string", enum: [allow] },
              },
            },
            content: problemContent({
              method_not_allowed: {
                summary: "Method not allowed",
                value: problemExample(
                  "method_not_allowed",
                  `${method.toUpperCase()} is not allowed here; use ${allow}`,
                ),
              },
            }),
          },
        },
      };
    }
    for (const method of METHODS) {
      const operation = item[method] as Operation;
      const scope = scopeOf?.(method.toUpperCase(), concretePath(path));
      if (scope) guarded(operation, scope);
      // Open on purpose, and said so: a probe or the document itself needs no key.
      else if (scopeOf) operation.security = [];
      const query = (operation[QUERY_PARAMETERS] ?? []) as object[];
      delete operation[QUERY_PARAMETERS];
      operation.parameters = [
        ...(operation.parameters ?? []),
        ...query,
        { $ref: "#/components/parameters/X-Request-Id" },
      ];
      for (const response of Object.values(operation.responses)) {
        response.headers = { "X-Request-Id": header("X-Request-Id"), ...response.headers };
      }
    }
  }
  return doc;
}

type Operation = {
  tags?: string[];
  parameters?: object[];
  responses: Record<string, { description?: string; headers?: Record<string, object>; content?: object }>;
  [field: string]: unknown;
};

const REQUEST_ID_SCHEMA = { type: "string" as const, minLength: 1, maxLength: 128, pattern: "^[\\x21-\\x7E]+$" };

/** What a feature adds to the document besides its operations (which its routes carry). */
export type FeatureDocs = {
  tags: { name: string; description: string }[];
  schemas?: Record<string, object>;
  /** OpenAPI 3.1 `webhooks`: the requests this service sends. */
  webhooks?: Record<string, object>;
  /** The problem+json extension members its errors carry. */
  problemFields?: Record<string, TSchema>;
};

const completed = new WeakMap<object, object>();

/**
 * The document, served at /swagger/json, of the routes of the app that uses this plugin: the
 * features' parts in the order given (their tags, component schemas, webhooks and problem fields).
 */
export function openapiDocs(features: FeatureDocs[], scopeOf?: ScopeOf) {
  const problemFields = Object.assign({}, ...features.map((f) => f.problemFields ?? {}));
  return new Elysia({ name: "openapi" })
    .onAfterHandle(({ path, responseValue }) => {
      if (!/^\/swagger\/json\/?$/.test(path) || typeof responseValue !== "object" || responseValue === null) return;
      let doc = completed.get(responseValue);
      if (!doc) {
        doc = completeDocument(responseValue as Record<string, unknown>, scopeOf);
        completed.set(responseValue, doc);
      }
      return doc;
    })
    .use(
      openapi({
        path: "/swagger",
        specPath: "/swagger/json",
        provider: null,
        exclude: { paths: [/^\/swagger/, /^\/metrics/] },
        documentation: {
          info: {
            title: "Payouts API",
            version: "1.0.0",
            description:
              "Payout requests, processed asynchronously. Errors are application/problem+json (RFC 9457). Amounts are decimal strings with two fraction digits.",
            // The package is private and ships under no open-source licence.
            license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
          },
          // Relative: the service that serves this document, wherever it is deployed.
          servers: [{ url: "/", description: "this service" }],
          tags: features.flatMap((f) => f.tags),
          webhooks: Object.assign({}, ...features.map((f) => f.webhooks ?? {})),
          components: {
            // The scheme of every operation the guard covers (guarded); none without a guard.
            ...(scopeOf
              ? {
                  securitySchemes: {
                    bearer: { type: "http", scheme: "bearer", description: "An API key: Authorization: Bearer <key>." },
                  },
                }
              : {}),
            headers: {
              "X-Request-Id": {
                required: true,
                description:
                  "The request's id: the client's X-Request-Id when valid, else a new UUID. On every response.",
                schema: REQUEST_ID_SCHEMA,
              },
              "Retry-After": {
                required: true,
                description: "Seconds to wait before trying again",
                schema: { type: "integer", minimum: 1 },
              },
            },
            parameters: {
              "X-Request-Id": {
                name: "X-Request-Id",
                in: "header",
                required: false,
                description:
                  "An id for this request, echoed on the response and written in the logs; an invalid one is replaced.",
                schema: { type: "string" },
              },
            },
            // TypeBox schemas are JSON Schema objects, wider than openapi-types' static types.
            schemas: Object.assign({}, ...features.map((f) => f.schemas ?? {}), {
              Problem: problemSchema(problemFields),
            }),
          },
        },
      }),
    );
}
