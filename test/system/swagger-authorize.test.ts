// Swagger UI at /swagger, driven in a real headless Chromium: its "Authorize" dialog takes an API
// key for the served document's bearer scheme, and "Try it out" on GET /api/payouts/ then sends it,
// so the page shows 200 where the same execution without authorizing showed 401. CI installs
// /usr/bin/chromium (.ci/run); without it this test fails, it is never skipped.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { createKey, testApi } from "../kit/api";
import { testDatabase } from "../kit/db";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const database = testDatabase();
// key: null: the api adds no key of its own, so only what the browser sends authorizes a request.
const api = testApi(database, { key: null });
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: api.handle });
const base = `http://127.0.0.1:${server.port}`;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH`,
    );
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 20_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 30_000);

afterAll(async () => {
  await browser?.close();
  server.stop(true);
  await database.close();
}, 30_000);

/**
 * Clicks Execute on the expanded operation and waits for the request it sends; returns that
 * request's Authorization header, its status, and the status Swagger UI shows for it.
 */
async function execute(page: Page, operation: string) {
  const sent = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/payouts/");
  await page.locator(`${operation} button.execute`).click();
  const response = await sent;
  // The live response row of this execution (its table is re-rendered for each one).
  const shown = page.locator(`${operation} .live-responses-table .response .response-col_status`);
  // Strict: waits until exactly one row shows this execution's status (the previous one is gone).
  await shown.filter({ hasText: `${response.status()}` }).waitFor();
  return {
    authorization: (await response.request().allHeaders()).authorization,
    status: response.status(),
    shown: (await shown.innerText()).trim(),
  };
}

test("Authorize with a valid API key on /swagger: Try it out on GET /api/payouts/ shows 200, 401 before", async () => {
  if (!browser) throw new Error("Chromium did not start");
  const key = await createKey(database, ["payouts:read"], "swagger ui");
  const created = await testApi(database).request("POST", "/api/payouts/", {
    amount: "12.34",
    currency: "RUB",
    recipient_details: "swagger ui",
  });
  expect(created.status).toBe(201);

  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/swagger`);

  // The list operation of the served document (operationId getApiPayouts, tag payouts).
  const operation = "#operations-payouts-getApiPayouts";
  await page.locator(`${operation} .opblock-summary-control`).click();
  await page.locator(`${operation} button.try-out__btn`).click();

  const anonymous = await execute(page, operation);
  expect(anonymous).toEqual({ authorization: undefined, status: 401, shown: "401" });

  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.locator("#auth-bearer-value").fill(key);
  await dialog.getByRole("button", { name: "Apply credentials" }).click();
  // The dialog says the scheme is authorized (the key is masked from here on), then closes.
  await dialog.getByRole("heading", { name: "Authorized" }).waitFor();
  await dialog.locator("button.btn-done").click();
  await dialog.waitFor({ state: "detached" });

  const authorized = await execute(page, operation);
  expect(authorized).toEqual({ authorization: `Bearer ${key}`, status: 200, shown: "200" });
  // The body Swagger UI shows is the api's list: it holds the payout made above.
  await page
    .locator(`${operation} .live-responses-table .response-col_description`)
    .getByText(created.body.id)
    .waitFor();
}, 60_000);
