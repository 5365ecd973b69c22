import { PROBLEMS, type ProblemCode, RETRY_WITH_KEY } from "./problem";

/*
 * The error responses every operation shares, with bodies as the server writes them: their
 * statuses and titles from the one problem catalogue (src/http/problem.ts).
 */

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

/** A problem+json body as the server writes it: its status and title from the catalogue. */
export const problemExample = (code: ProblemCode, detail: string, extra: object = {}) => ({
  type: "about:blank",
  title: PROBLEMS[code].title,
  status: PROBLEMS[code].status,
  code,
  detail,
  ...extra,
});

export type Examples = Record<string, { summary: string; value: object }>;

// What each error status means here, with bodies as the server writes them.
const problems: Record<number, { description: string; examples: Examples; headers?: Record<string, object> }> = {
  400: {
    description: "Invalid JSON, fields, query parameters or Idempotency-Key",
    examples: {
      validation_error: {
        summary: "Invalid fields",
        value: problemExample("validation_error", "2 fields are invalid", {
          errors: [
            { field: "amount", message: "must be at least 0.01" },
            { field: "currency", message: "must be one of RUB, USD, EUR" },
          ],
        }),
      },
      invalid_json: {
        summary: "A repeated key",
        value: problemExample("invalid_json", 'the body is ambiguous: the key "amount" appears twice'),
      },
    },
  },
  401: {
    description:
      "No valid API key: missing, malformed, unknown, wrong, expired or revoked, all answered alike (WWW-Authenticate: Bearer)",
    headers: {
      "WWW-Authenticate": {
        required: true,
        description: "The scheme to authenticate with",
        schema: { type: "string", enum: ['Bearer realm="payouts"'] },
      },
    },
    examples: {
      unauthorized: {
        summary: "No valid API key",
        value: problemExample("unauthorized", "a valid API key is required: Authorization: Bearer <key>"),
      },
    },
  },
  403: {
    description: "The API key lacks the scope the operation needs; scope names it",
    examples: {
      missing_scope: {
        summary: "Missing scope",
        value: problemExample("missing_scope", "the API key lacks the scope payouts:write: this request needs it", {
          scope: "payouts:write",
        }),
      },
    },
  },
  404: {
    description: "No such payout (also for an id that is not a UUID)",
    examples: {
      not_found: { summary: "No such payout", value: problemExample("not_found", "no such payout") },
    },
  },
  409: {
    description: "The payout's status forbids the change; current_status names it",
    examples: {
      status_conflict: {
        summary: "Too late to cancel",
        value: problemExample("status_conflict", "the payout is COMPLETED: only a NEW payout can be cancelled", {
          current_status: "COMPLETED",
        }),
      },
    },
  },
  413: {
    description: "Body over 64 KiB",
    examples: {
      payload_too_large: {
        summary: "Too large",
        value: problemExample("payload_too_large", "the body must be at most 65536 bytes"),
      },
    },
  },
  415: {
    description: "Body that is not application/json, or not UTF-8",
    examples: {
      unsupported_media_type: {
        summary: "Not JSON",
        value: problemExample("unsupported_media_type", "the body must be application/json"),
      },
    },
  },
  422: {
    description: "Idempotency-Key reused with a different body; nothing was created",
    examples: {
      idempotency_key_reused: {
        summary: "Another body under the same key",
        value: problemExample(
          "idempotency_key_reused",
          "this Idempotency-Key was first used with a different request body; nothing was created",
        ),
      },
    },
  },
  500: {
    description: "A bug: a generic body",
    examples: {
      internal_error: {
        summary: "A bug",
        value: problemExample("internal_error", "an unexpected error occurred"),
      },
    },
  },
  503: {
    description: "The database is unreachable, too slow, or its schema is not current yet (Retry-After)",
    headers: { "Retry-After": header("Retry-After") },
    examples: {
      database_unavailable: {
        summary: "Database unreachable",
        value: problemExample("database_unavailable", "the database cannot be reached; try again"),
      },
    },
  },
  504: {
    description:
      "create_outcome_unknown: the database could not confirm whether the payout was stored. Without an Idempotency-Key, payout_id and Location name it; after Retry-After, GET it: 404 means it was not created and never will be. With an Idempotency-Key, neither is given: retry with the same key, which returns the key's payout if one was created, or creates it once",
    headers: {
      "Retry-After": header("Retry-After"),
      Location: {
        description: "Without an Idempotency-Key: the payout to look up",
        schema: { type: "string" },
      },
    },
    examples: {
      create_outcome_unknown: {
        summary: "Outcome unknown",
        value: problemExample(
          "create_outcome_unknown",
          "the database did not confirm whether payout 0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10 was stored; after 5 s, GET /api/payouts/0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10/ tells: 404 means it was not created and will not be, 200 means it was. Do not repeat the request without an Idempotency-Key until then.",
          { payout_id: "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10" },
        ),
      },
      create_outcome_unknown_keyed: {
        summary: "Outcome unknown, with an Idempotency-Key",
        value: problemExample(
          "create_outcome_unknown",
          `the database did not confirm whether the payout was created; ${RETRY_WITH_KEY}`,
        ),
      },
    },
  },
};

/** The examples of an error status, for an operation that adds its own to them. */
export const problemExamples = (status: number) => (problems[status] as { examples: Examples }).examples;

export const problemContent = (examples: Examples) => ({
  "application/problem+json": { schema: ref("Problem"), examples },
});

/**
 * OpenAPI responses: the success ones given, plus the problem+json ones by status (503 and 500 on
 * every operation). `examples400` replaces the generic 400 examples where the operation has its own.
 */
export function responses(success: Record<number, object>, errors: number[], examples400?: Examples) {
  const out: Record<string, object> = { ...success };
  for (const status of [...errors, 500, 503]) {
    const { description, examples, headers } = problems[status] as (typeof problems)[number];
    out[status] = {
      description,
      ...(headers ? { headers } : {}),
      content: problemContent(status === 400 && examples400 ? examples400 : examples),
    };
  }
  return out;
}
