import { type StaticDecode, Type } from "@sinclair/typebox";
import { NAME_MAX, SCOPES } from "../db/schema";
import { Enum, Integer, Timestamp, TrimmedText } from "../lib/kinds";

export { SCOPES };
export type Scope = (typeof SCOPES)[number];

/** A roll's default overlap: a day, as for webhook signing secrets. */
export const ROLL_OVERLAP_DEFAULT_MS = 24 * 60 * 60 * 1000;
/** The longest overlap a roll may ask for: a leaked key must not stay usable for long. */
const ROLL_OVERLAP_MAX_MS = 7 * 24 * 60 * 60 * 1000;
/** created_by of a key made outside the API: the keys role, or the embedded default's development key. */
export const BOOTSTRAP = "bootstrap";

const ScopeSchema = Enum(SCOPES, {
  description:
    "payouts:read: list and read payouts; payouts:write: create, change, cancel and delete payouts; events:read: the events APIs; webhooks:manage: webhook endpoints and their deliveries; keys:manage: the keys API.",
});

const nullableInstant = (description: string) =>
  Type.Union([Type.String({ format: "date-time" }), Type.Null()], { description });
const actor = (description: string) => Type.String({ description });

export const ApiKey = Type.Object(
  {
    id: Type.String({ format: "uuid", description: "Public: the part of the key between pk_ and the secret." }),
    name: Type.String(),
    scopes: Type.Array(ScopeSchema),
    created_at: Type.String({ format: "date-time" }),
    created_by: actor("The id of the key that created it, or bootstrap (the keys role, the development key)."),
    expires_at: nullableInstant("From then on the key is refused; null: it does not expire."),
    last_used_at: nullableInstant("When it last authenticated a request; at most a minute stale."),
    previous_secret_expires_at: nullableInstant("After a roll: until then the secret before the roll still works too."),
    rolled_at: nullableInstant("When its secret was last rolled."),
    rolled_by: Type.Union([Type.String(), Type.Null()], { description: "The key that rolled it." }),
    revoked_at: nullableInstant("From then on the key is refused; a revoked key is kept, so its id still resolves."),
    revoked_by: Type.Union([Type.String(), Type.Null()], {
      description: "The key that revoked it, or bootstrap (the keys role).",
    }),
  },
  {
    description: "An API key. Its secret is shown only when it is created or rolled.",
    examples: [
      {
        id: "0193b6c2-9c30-7c3a-9a51-2f0c8e6d4b13",
        name: "ERP export",
        scopes: ["payouts:read", "events:read"],
        created_at: "2026-11-26T10:00:00.000Z",
        created_by: "0193b6c2-1a00-7c3a-9a51-2f0c8e6d4b01",
        expires_at: null,
        last_used_at: "2026-11-26T10:14:02.114Z",
        previous_secret_expires_at: null,
        rolled_at: null,
        rolled_by: null,
        revoked_at: null,
        revoked_by: null,
      },
    ],
  },
);
export type ApiKey = typeof ApiKey.static;

const Secret = Type.String({
  pattern: "^pk_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_[0-9A-Za-z]{43}$",
  description:
    "The whole key, to send as Authorization: Bearer <secret>: pk_, the key's id, _, then 43 base62 characters (256 random bits). Shown only here; store it now.",
});

export const ApiKeyWithSecret = Type.Composite([ApiKey, Type.Object({ secret: Secret })], {
  description: "A key with its secret: the answer to create and roll, the only ones that show it.",
});
export type ApiKeyWithSecret = typeof ApiKeyWithSecret.static;

export const CreateApiKeyBody = Type.Object(
  {
    name: TrimmedText({
      maxLength: NAME_MAX,
      description: `What the key is for; not blank, at most ${NAME_MAX} characters.`,
    }),
    scopes: Type.Array(ScopeSchema, {
      minItems: 1,
      uniqueItems: true,
      description: "Distinct scopes, each held by the key that creates it (a key cannot grant more than it holds).",
    }),
    expires_at: Type.Optional(Timestamp({ description: "RFC 3339, in the future; absent: the key does not expire." })),
  },
  { additionalProperties: false, examples: [{ name: "ERP export", scopes: ["payouts:read", "events:read"] }] },
);
export type CreateApiKeyInput = StaticDecode<typeof CreateApiKeyBody>;

export const RollApiKeyBody = Type.Object(
  {
    expires_in_ms: Type.Optional(
      Integer({
        minimum: 0,
        maximum: ROLL_OVERLAP_MAX_MS,
        default: ROLL_OVERLAP_DEFAULT_MS,
        description: `How long the secret before the roll keeps working, in milliseconds: ${ROLL_OVERLAP_DEFAULT_MS} (a day) by default, 0 to stop it at once, at most ${ROLL_OVERLAP_MAX_MS} (7 days).`,
      }),
    ),
  },
  { additionalProperties: false, examples: [{ expires_in_ms: 3_600_000 }] },
);
export type RollApiKeyInput = StaticDecode<typeof RollApiKeyBody>;

const ApiKeyPage = Type.Object({
  results: Type.Array(Type.Unsafe({ $ref: "#/components/schemas/ApiKey" })),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: "null on the last page." }),
});

export const ApiKeyIdParam = Type.Object({ id: Type.String({ description: "The key's id (a UUID)." }) });

/** The document's component schemas of this feature, for src/http/openapi.ts to list. */
export const KEY_SCHEMAS = {
  ApiKey,
  ApiKeyWithSecret,
  CreateApiKey: CreateApiKeyBody,
  RollApiKey: RollApiKeyBody,
  ApiKeyPage,
};
