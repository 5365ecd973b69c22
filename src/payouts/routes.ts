import { Elysia } from "elysia";
import { ValidationFailed } from "../errors";
import { readJsonBody } from "../http/body";
import { docs } from "../http/openapi";
import { aboutPayout } from "../http/request-log";
import { json, pathId } from "../http/route";
import { IDEMPOTENCY_KEY_MAX, PayoutIdParam } from "./model";
import type { PayoutService } from "./service";
import { isIdempotencyKey, validateCreate, validateListQuery, validateUpdate } from "./validation";

function idempotencyKey(headers: Headers): string | undefined {
  const key = headers.get("idempotency-key");
  if (key === null) return undefined;
  if (!isIdempotencyKey(key)) {
    throw new ValidationFailed(
      [{ field: "Idempotency-Key", message: `must be 1 to ${IDEMPOTENCY_KEY_MAX} visible ASCII characters` }],
      "header",
    );
  }
  return key;
}

const payoutId = (raw: string) => pathId(raw, "payout");

/**
 * The payouts resource. `onCreated` hands a committed payout to processing; it must not throw
 * or wait on the broker (the relay covers a hand-off that fails).
 */
export function payoutRoutes(service: PayoutService, onCreated: (id: string) => void) {
  return new Elysia({ name: "payouts" })
    .onParse(({ request }) => {
      // DELETE takes no body: a client need not send a Content-Type to delete.
      if (request.method !== "DELETE") return readJsonBody(request);
    })
    .post(
      "/api/payouts/",
      async ({ request, body }) => {
        const key = idempotencyKey(request.headers);
        const input = validateCreate(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        const result = await service.create(input.value, key);
        if (result.replayed) {
          const { id } = result.body as { id: string };
          aboutPayout(request, id);
          const location = `/api/payouts/${id}/`;
          return json(result.body, result.status, { location, "idempotent-replayed": "true" });
        }
        onCreated(result.payout.id);
        aboutPayout(request, result.payout.id);
        return json(result.payout, 201, { location: `/api/payouts/${result.payout.id}/` });
      },
      { detail: docs.create },
    )
    .get(
      "/api/payouts/",
      async ({ request }) => {
        const query = validateListQuery(new URL(request.url).searchParams);
        if (!query.ok) throw new ValidationFailed(query.errors, "query parameter");
        return json(await service.list(query.value), 200);
      },
      { detail: docs.list },
    )
    .get("/api/payouts/:id/", async ({ params }) => json(await service.get(payoutId(params.id)), 200), {
      params: PayoutIdParam,
      detail: docs.get,
    })
    .patch(
      "/api/payouts/:id/",
      async ({ params, body }) => {
        const id = payoutId(params.id);
        const input = validateUpdate(body);
        if (!input.ok) throw new ValidationFailed(input.errors);
        return json(await service.update(id, input.value), 200);
      },
      { params: PayoutIdParam, detail: docs.update },
    )
    .delete(
      "/api/payouts/:id/",
      async ({ params }) => {
        await service.remove(payoutId(params.id));
        return new Response(null, { status: 204 });
      },
      { params: PayoutIdParam, detail: docs.remove },
    );
}
