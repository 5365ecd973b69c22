DROP INDEX "payouts_unpublished_idx";--> statement-breakpoint
-- Room on each page for the row's next version: setting published_at after the broker's confirm
-- then stays on the page and, touching no indexed column, updates no index (a HOT update).
ALTER TABLE "payouts" SET (fillfactor = 85);
