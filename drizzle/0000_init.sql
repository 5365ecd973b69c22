CREATE TYPE "public"."currency" AS ENUM('RUB', 'USD', 'EUR');--> statement-breakpoint
CREATE TYPE "public"."payout_status" AS ENUM('NEW', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED');--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"key" varchar(255) PRIMARY KEY NOT NULL,
	"fingerprint" text NOT NULL,
	"payout_id" uuid NOT NULL,
	"response_status" integer NOT NULL,
	"response_body" jsonb NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payouts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"amount" numeric(12, 2) NOT NULL,
	"currency" "currency" NOT NULL,
	"recipient_details" varchar(255) NOT NULL,
	"comment" varchar(1000) DEFAULT '' NOT NULL,
	"status" "payout_status" DEFAULT 'NEW' NOT NULL,
	"failure_reason" text,
	"attempts" smallint DEFAULT 0 NOT NULL,
	"published_at" timestamp (3) with time zone,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp (3) with time zone,
	CONSTRAINT "payouts_amount_positive" CHECK ("payouts"."amount" >= 0.01),
	CONSTRAINT "payouts_recipient_not_blank" CHECK (btrim("payouts"."recipient_details") <> ''),
	CONSTRAINT "payouts_processed_at_iff_final" CHECK (("payouts"."processed_at" IS NOT NULL) = ("payouts"."status" IN ('COMPLETED', 'FAILED'))),
	CONSTRAINT "payouts_failure_reason_iff_failed" CHECK (("payouts"."failure_reason" IS NOT NULL) = ("payouts"."status" = 'FAILED'))
);
--> statement-breakpoint
CREATE TABLE "simulated_gateway_payments" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"idempotency_key" varchar(255) NOT NULL,
	"payout_id" uuid NOT NULL,
	"amount" numeric(12, 2) NOT NULL,
	"currency" "currency" NOT NULL,
	"calls" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "simulated_gateway_payments_idempotency_key_unique" UNIQUE("idempotency_key")
);
--> statement-breakpoint
CREATE INDEX "payouts_created_idx" ON "payouts" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "payouts_status_created_idx" ON "payouts" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "payouts_currency_created_idx" ON "payouts" USING btree ("currency","created_at","id");--> statement-breakpoint
CREATE INDEX "payouts_unpublished_idx" ON "payouts" USING btree ("created_at") WHERE "payouts"."published_at" IS NULL AND "payouts"."status" = 'NEW';--> statement-breakpoint
CREATE INDEX "simulated_gateway_payments_payout_idx" ON "simulated_gateway_payments" USING btree ("payout_id");