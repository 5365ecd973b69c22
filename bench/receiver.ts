// The webhook receiver of `bun run bench` (issue 10): answers 200 to every delivery, as a healthy
// client's endpoint would, and counts the distinct events it got. GET /count says how many;
// DELETE /count starts over. It checks no signature: the bench measures the sender's cost.
//
// Environment: PORT.
export {};

const seen = new Set<string>();
let posts = 0;

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8100),
  async fetch(request) {
    if (request.method === "POST") {
      await request.arrayBuffer();
      posts++;
      seen.add(request.headers.get("webhook-id") ?? "");
      return new Response(null, { status: 200 });
    }
    if (request.method === "DELETE") {
      seen.clear();
      posts = 0;
    }
    return Response.json({ events: seen.size, posts });
  },
});
