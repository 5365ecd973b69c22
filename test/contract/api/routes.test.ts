// The endpoints' shape: trailing slash optional, Location on 201, and the hand-off to processing
// after the commit, exactly once.
import { afterAll, describe, expect, test } from "bun:test";
import { testApi } from "../../kit/api";
import { databaseUrl, testDatabase } from "../../kit/db";
import { countRows, createPayout, payoutRow, validBody } from "../../kit/fixtures";

const database = testDatabase();
afterAll(() => database.close());
const api = testApi(database);

describe("trailing slash", () => {
  for (const path of ["/api/payouts", "/api/payouts/"]) {
    test(`POST ${path} creates a payout`, async () => {
      expect((await api.request("POST", path, validBody)).status).toBe(201);
    });

    test(`GET ${path} lists payouts`, async () => {
      const response = await api.request("GET", `${path}?limit=1`);
      expect(response.status).toBe(200);
      expect(response.body.results).toHaveLength(1);
    });
  }

  for (const slash of ["", "/"]) {
    const label = slash ? "with" : "without";
    test(`GET /api/payouts/{id} ${label} the slash reads the payout`, async () => {
      const created = await createPayout(api);
      const response = await api.request("GET", `/api/payouts/${created.id}${slash}`);
      expect(response.status).toBe(200);
      expect(response.body).toEqual(created);
    });

    test(`PATCH /api/payouts/{id} ${label} the slash changes the payout`, async () => {
      const { id } = await createPayout(api);
      const response = await api.request("PATCH", `/api/payouts/${id}${slash}`, { comment: "changed" });
      expect(response.status).toBe(200);
      expect((await payoutRow(database, id))?.comment).toBe("changed");
    });

    test(`DELETE /api/payouts/{id} ${label} the slash deletes the payout`, async () => {
      const { id } = await createPayout(api);
      expect((await api.request("DELETE", `/api/payouts/${id}${slash}`)).status).toBe(204);
      expect(await payoutRow(database, id)).toBeUndefined();
    });

    test(`/swagger/json ${label} the slash serves the OpenAPI document`, async () => {
      const response = await api.request("GET", `/swagger/json${slash}`);
      expect(response.status).toBe(200);
      expect(response.body.openapi).toMatch(/^3\./);
    });

    test(`/swagger ${label} the slash serves Swagger UI`, async () => {
      const response = await api.request("GET", `/swagger${slash}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    });

    for (const probe of ["live", "ready"]) {
      test(`/health/${probe} ${label} the slash answers 200`, async () => {
        expect((await api.request("GET", `/health/${probe}${slash}`)).status).toBe(200);
      });
    }
  }
});

describe("create", () => {
  test("201 carries a Location header that reads the payout back", async () => {
    const created = await api.request("POST", "/api/payouts/", validBody);
    expect(created.status).toBe(201);
    expect(created.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(created.headers.get("location")).toBe(`/api/payouts/${created.body.id}/`);
    const read = await api.request("GET", created.headers.get("location") as string);
    expect(read.body).toEqual(created.body);
  });

  test("the response is exactly what the database holds", async () => {
    const created = await createPayout(api, { amount: 10.5, comment: "x" });
    const row = await payoutRow(database, created.id);
    expect(created as Record<string, unknown>).toEqual({
      id: row?.id,
      amount: row?.amount,
      currency: row?.currency,
      recipient_details: row?.recipient_details,
      comment: row?.comment,
      status: row?.status,
      failure_reason: row?.failure_reason,
      created_at: row?.created_at,
      updated_at: row?.updated_at,
      processed_at: row?.processed_at,
    });
  });

  test("ids are UUID v7 and grow with time", async () => {
    const first = await createPayout(api);
    const second = await createPayout(api);
    expect(second.id > first.id).toBe(true);
  });

  test("the id is handed to processing once, only after its row is committed", async () => {
    // psql is another session and runs synchronously: it sees the row only if the api's
    // transaction has committed by the time the id is handed off.
    const seenCommitted: boolean[] = [];
    const watched = testApi(database, {
      onCreated: (id) => {
        const psql = Bun.spawnSync(["psql", databaseUrl, "-tAc", `SELECT count(*) FROM payouts WHERE id = '${id}'`]);
        seenCommitted.push(psql.stdout.toString().trim() === "1");
      },
    });
    const plain = await watched.request("POST", "/api/payouts/", validBody);
    const keyed = await watched.request("POST", "/api/payouts/", validBody, {
      "idempotency-key": `commit-${Date.now()}`,
    });
    expect(watched.handedOff).toEqual([plain.body.id, keyed.body.id]);
    expect(seenCommitted).toEqual([true, true]);
  });

  test("a refused create hands nothing to processing", async () => {
    const before = await countRows(database, "payouts");
    const refused = testApi(database);
    await refused.request("POST", "/api/payouts/", { ...validBody, amount: "0" });
    await refused.request("POST", "/api/payouts/", "{", {});
    await refused.request("POST", "/api/payouts/", validBody, { "idempotency-key": "" });
    expect(refused.handedOff).toEqual([]);
    expect(await countRows(database, "payouts")).toBe(before);
  });
});

describe("405 and Allow, from the app's own routes", () => {
  const id = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";
  // Written out by hand: the server derives Allow from its routes, this is what it must come to.
  const allow: Record<string, string> = {
    "/api/payouts/": "GET, POST",
    "/api/payouts/:id/": "GET, PATCH, DELETE",
    "/api/payouts/:id/events/": "GET",
    "/api/events/": "GET",
    "/api/keys/": "GET, POST",
    "/api/keys/:id/": "GET, DELETE",
    "/api/keys/:id/roll": "POST",
    "/api/webhook-endpoints/": "GET, POST",
    "/api/webhook-endpoints/:endpoint_id/": "GET, PATCH, DELETE",
    "/api/webhook-endpoints/:endpoint_id/rotate-secret/": "POST",
    "/api/webhook-endpoints/:endpoint_id/deliveries/": "GET",
    "/api/webhook-endpoints/:endpoint_id/deliveries/:delivery_id/retry/": "POST",
    "/swagger": "GET",
    "/swagger/json": "GET",
    "/swagger/assets/swagger-ui.css": "GET",
    "/swagger/assets/swagger-ui-bundle.js": "GET",
    "/health/live": "GET",
    "/health/ready": "GET",
    "/metrics": "GET",
  };

  test("every route of the app is listed here", () => {
    expect([...new Set(api.app.routes.map((r) => r.path))].sort()).toEqual(Object.keys(allow).sort());
  });

  for (const [pattern, methods] of Object.entries(allow)) {
    const path = pattern.replace(":id", id).replace(":endpoint_id", id).replace(":delivery_id", id);
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]) {
      if (methods.split(", ").includes(method)) continue;
      for (const slash of pattern.endsWith("/") ? [path, path.slice(0, -1)] : [path, `${path}/`]) {
        test(`${method} ${slash} is a 405 with Allow: ${methods}`, async () => {
          const before = await countRows(database, "payouts");
          const response = await api.request(
            method,
            slash,
            ["GET", "DELETE", "OPTIONS", "TRACE"].includes(method) ? undefined : validBody,
          );
          expect(response.status).toBe(405);
          expect(response.headers.get("allow")).toBe(methods);
          expect(response.body.code).toBe("method_not_allowed");
          expect(await countRows(database, "payouts")).toBe(before);
        });
      }
    }
  }
});

describe("the Host header plays no part in routing", () => {
  /** Sends a raw HTTP/1.1 request with this Host line to a real server; returns status and body. */
  async function rawRequest(port: number, host: string, path: string) {
    const key = await api.key();
    const chunks: Buffer[] = [];
    const { promise, resolve } = Promise.withResolvers<void>();
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data: (_, data) => void chunks.push(Buffer.from(data)), close: () => resolve(), end: () => resolve() },
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`);
    await promise;
    const text = Buffer.concat(chunks).toString();
    const [head = "", body = ""] = text.split("\r\n\r\n");
    return { status: Number(head.split(" ")[1]), head, body };
  }

  for (const host of ["api", "api:80", "a", "127.0.0.1", "payouts.example.com:8443", "[::1]:8000"]) {
    test(`Host: ${host} reaches the routes`, async () => {
      const server = testApi(database).app.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const port = server.server?.port as number;
        const { id } = await createPayout(api);
        const list = await rawRequest(port, host, "/api/payouts/?limit=1");
        expect(list.status).toBe(200);
        const read = await rawRequest(port, host, `/api/payouts/${id}/`);
        expect(read.status).toBe(200);
        expect(read.body).toContain(`"id":"${id}"`);
        expect((await rawRequest(port, host, "/health/live")).status).toBe(200);
      } finally {
        await server.stop();
      }
    });
  }

  test("an empty Host is a 400 problem", async () => {
    const server = testApi(database).app.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const response = await rawRequest(server.server?.port as number, "", "/api/payouts/");
      expect(response.status).toBe(400);
      expect(response.head).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/i);
      expect(response.head).toMatch(/\r\nx-request-id: \S+\r\n/i);
      expect(JSON.parse(response.body)).toEqual({
        type: "about:blank",
        title: "Bad request",
        status: 400,
        code: "invalid_host",
        detail: "the Host header must name a host",
      });
    } finally {
      await server.stop();
    }
  });
});
