-- Who made and last changed each webhook endpoint (docs: access-control, "Who did it"): the API
-- key's id, or `system` (the worker disabling it after failed deliveries). Endpoints made before
-- API keys existed were made by an unauthenticated caller: `anonymous`.
--
-- The signing secrets keep their columns, now holding `v1:<key id>:<iv>:<ciphertext>` (AES-256-GCM
-- under WEBHOOK_SECRET_KEYS, src/webhooks/secret-box.ts). A migration has no key to encrypt with:
-- the rows still in clear (`whsec_...`) are sealed by the api, worker and role all when they start.
ALTER TABLE "webhook_endpoints" ADD COLUMN "created_by" text;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD COLUMN "updated_by" text;--> statement-breakpoint
UPDATE "webhook_endpoints" SET "created_by" = 'anonymous', "updated_by" = 'anonymous';--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ALTER COLUMN "created_by" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ALTER COLUMN "updated_by" SET NOT NULL;
