import { Elysia } from "elysia";
import css from "swagger-ui-dist/swagger-ui.css" with { type: "file" };
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };

const swaggerHtml = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Payouts API</title>
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: "/swagger/json", dom_id: "#swagger-ui" });</script>
</body>
</html>`;

/**
 * Swagger UI at /swagger, its assets served from this program: it needs no CDN and works offline.
 * /swagger?format=openapi answers with the document that /swagger/json serves, which `handle`
 * (the app's own) answers.
 */
export const swaggerUi = (handle: (request: Request) => Promise<Response>) =>
  new Elysia({ name: "swagger-ui" })
    .get(
      "/swagger",
      ({ query, request }) =>
        query.format === "openapi"
          ? handle(new Request(new URL("/swagger/json", request.url).href))
          : new Response(swaggerHtml, { headers: { "content-type": "text/html; charset=utf-8" } }),
      { detail: { hide: true } },
    )
    .get("/swagger/assets/swagger-ui.css", () => new Response(Bun.file(css)), { detail: { hide: true } })
    .get("/swagger/assets/swagger-ui-bundle.js", () => new Response(Bun.file(bundle)), { detail: { hide: true } });
