import { type Static, Type } from "@sinclair/typebox";
import { type DocumentDecoration, Elysia } from "elysia";
import type { Database } from "../db/client";
import { schemaCheck } from "../db/migrate";
import { Enum } from "../lib/kinds";
import { type FeatureDocs, jsonContent } from "./openapi";

const HealthLive = Type.Object({ status: Enum(["ok"] as const) });
const HealthReady = Type.Object({
  status: Enum(["ready", "unavailable"] as const),
  database: Enum(["up", "down", "schema behind"] as const, {
    description: "up: it answers and holds every migration of this build",
  }),
  broker: Enum(["up", "down"] as const, {
    description: "Reported only: payouts are accepted while the broker is down",
  }),
});
type HealthReady = Static<typeof HealthReady>;

export const healthDocs: FeatureDocs = { tags: [{ name: "health", description: "Probes for the orchestrator" }] };

const docs = {
  live: {
    tags: ["health"],
    summary: "Liveness: the process runs",
    responses: { 200: { description: "Alive", content: jsonContent(HealthLive) } },
  },
  ready: {
    tags: ["health"],
    summary: "Readiness: the database answers and holds this build's schema",
    description:
      "The broker's state is reported but does not make the api unready: payouts are accepted while it is down.",
    responses: {
      200: { description: "Ready", content: jsonContent(HealthReady) },
      503: {
        description: "Not ready: the database is down or its schema is behind",
        content: jsonContent(HealthReady),
      },
    },
  },
  // TypeBox schemas are JSON Schema objects, wider than openapi-types' static types.
} as unknown as Record<"live" | "ready", DocumentDecoration>;

/**
 * The orchestrator's probes. `brokerConnected` is the broker's state: reported, but it never
 * makes the api unready.
 */
export function healthRoutes({ database, brokerConnected }: { database: Database; brokerConnected: () => boolean }) {
  const schemaCurrent = schemaCheck(database.db);
  return (
    new Elysia({ name: "health" })
      .get("/health/live", () => ({ status: "ok" as const }), { detail: docs.live })
      // Ready means usable: the database answers and holds every migration this build knows, so that
      // during a rollout no pod serves on an older schema.
      .get(
        "/health/ready",
        async ({ set }): Promise<HealthReady> => {
          const db = !(await database.ping()) ? "down" : (await schemaCurrent()) ? "up" : "schema behind";
          set.status = db === "up" ? 200 : 503;
          return {
            status: db === "up" ? "ready" : "unavailable",
            database: db,
            broker: brokerConnected() ? "up" : "down",
          };
        },
        { detail: docs.ready },
      )
  );
}
