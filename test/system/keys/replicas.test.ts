// Revocation reaches every api replica within API_KEY_CACHE_TTL_MS: two api processes on the run's
// database, a key made by the keys role, revoked through one, refused by the other once its
// cache entry ends, and not before the bound is needed (the cache is real: no read per request).
import { afterAll, expect, test } from "bun:test";
import { freePort, killSpawned, runMain, spawnRole, withKey } from "../../kit/processes";
import { eventually } from "../../kit/wait";

afterAll(() => killSpawned(), 30_000);

const TTL_MS = 5000;
// Polling every 20 ms, the answer's own time, and a loaded 2-core machine.
const SLACK_MS = 1500;

async function startApi() {
  const port = freePort();
  spawnRole("api", { PORT: `${port}`, API_KEY_CACHE_TTL_MS: `${TTL_MS}` });
  const base = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.ok, 30_000, 100);
  return base;
}

test(
  "a key revoked through one api is refused by another within API_KEY_CACHE_TTL_MS",
  async () => {
    const [first, second] = await Promise.all([startApi(), startApi()]);
    const made = await runMain(["--role=keys", "create", "--name", "replicas", "--scopes", "payouts:read"], {});
    expect(made.exitCode).toBe(0);
    const { id, secret } = JSON.parse(made.stdout[0] as string) as { id: string; secret: string };
    const read = async (base: string) =>
      (await fetch(`${base}/api/payouts/?limit=1`, { headers: { authorization: `Bearer ${secret}` } })).status;

    // The second api verifies the key now: its cache holds it from here on.
    expect(await read(second)).toBe(200);
    expect(await read(first)).toBe(200);
    const revoked = await fetch(`${first}/api/keys/${id}/`, { method: "DELETE", headers: await withKey() });
    expect(revoked.status).toBe(204);
    const at = performance.now();
    // At once on the replica that revoked it.
    expect(await read(first)).toBe(401);
    // The other still trusts its cache entry: checking a key costs it no database read.
    expect(await read(second)).toBe(200);
    await eventually(async () => (await read(second)) === 401, TTL_MS + SLACK_MS, 20);
    const tookMs = performance.now() - at;
    expect(tookMs).toBeLessThanOrEqual(TTL_MS + SLACK_MS);
    // And it stays refused.
    expect(await read(second)).toBe(401);
  },
  { timeout: 90_000 },
);
