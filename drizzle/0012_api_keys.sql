-- API keys (docs: access-control; issue 19). Each key's secret is shown once; only its SHA-256 is
-- stored (a secret of 256 random bits needs no slow hash: nothing can be guessed from it). Rows are
-- never deleted: a revoked key keeps its row (revoked_at, revoked_by), so its id, named as the
-- actor of what it did, still resolves. No index beyond the primary key: authentication looks a key
-- up by the id inside it, and the list reads the primary key backwards (ids are UUID v7).
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" varchar(255) NOT NULL,
	"scopes" text[] NOT NULL,
	"secret_hash" "bytea" NOT NULL,
	"previous_secret_hash" "bytea",
	"previous_secret_expires_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"created_by" text NOT NULL,
	"expires_at" timestamp (3) with time zone,
	"last_used_at" timestamp (3) with time zone,
	"rolled_at" timestamp (3) with time zone,
	"rolled_by" text,
	"revoked_at" timestamp (3) with time zone,
	"revoked_by" text,
	CONSTRAINT "api_keys_scopes_known" CHECK ("api_keys"."scopes" <@ ARRAY['payouts:read', 'payouts:write', 'events:read', 'webhooks:manage', 'keys:manage']::text[]),
	CONSTRAINT "api_keys_scopes_not_empty" CHECK (cardinality("api_keys"."scopes") > 0),
	CONSTRAINT "api_keys_secret_hash_sha256" CHECK (octet_length("api_keys"."secret_hash") = 32),
	CONSTRAINT "api_keys_previous_secret_whole" CHECK (("api_keys"."previous_secret_hash" IS NULL) = ("api_keys"."previous_secret_expires_at" IS NULL) AND coalesce(octet_length("api_keys"."previous_secret_hash"), 32) = 32),
	CONSTRAINT "api_keys_revoked_whole" CHECK (("api_keys"."revoked_at" IS NULL) = ("api_keys"."revoked_by" IS NULL)),
	CONSTRAINT "api_keys_rolled_whole" CHECK (("api_keys"."rolled_at" IS NULL) = ("api_keys"."rolled_by" IS NULL))
);
