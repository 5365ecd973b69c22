// The bearer guard's cost per request, in-process (app.handle, no socket, no load generator): the
// api's app with the guard and the same app without it, on a route that reads nothing from the
// database (GET /api/payouts/not-a-uuid/: a 404 from the path alone), so that the difference is
// the guard's own work: parsing the header, hashing the token, the cache lookup, and the database
// read once per API_KEY_CACHE_TTL_MS. Alternating rounds, the median of each counts.
import { randomBytes } from "node:crypto";
import { loadConfig } from "../src/config";
import { connectPostgres } from "../src/db/client";
import { createApp } from "../src/http/app";
import { keyService } from "../src/keys/service";
import { systemClock } from "../src/lib/clock";
import { createLogger } from "../src/lib/log";
import { apiGuard, apiPlugins } from "../src/roles/http-features";
import { keyServiceOptions, webhookSettings } from "../src/roles/options";
import { secretBox } from "../src/webhooks/secret-box";

const ROUNDS = 11;
const PER_ROUND = 5000;

export async function guardCost(databaseUrl: string, key: string) {
  const config = loadConfig({});
  const database = connectPostgres(databaseUrl, 2, "bench-guard");
  // The request log writes as deployed (a line per request), to nowhere: both apps pay it alike.
  const log = createLogger("info", "json", {}, () => {});
  const keys = keyService(
    { db: database.db, availability: database.availability, clock: systemClock, log },
    keyServiceOptions(config),
  );
  const app = (guarded: boolean) =>
    createApp({
      database,
      log,
      brokerConnected: () => true,
      ...(guarded ? { guard: apiGuard(keys) } : {}),
      features: apiPlugins(
        // No endpoint is made here: a throwaway sealing key serves.
        {
          database,
          clock: systemClock,
          log,
          keys,
          box: secretBox([{ id: "bench", key: randomBytes(32) }]),
          onCreated: () => {},
        },
        {
          idempotencyKeyTtlMs: config.idempotencyKeyTtlMs,
          createDeadlineMs: config.createDeadlineMs,
          webhooks: webhookSettings(config),
        },
      ),
    });
  const apps = { with: app(true), without: app(false) };
  const headers = { authorization: `Bearer ${key}` };
  const round = async (which: "with" | "without") => {
    const started = performance.now();
    for (let i = 0; i < PER_ROUND; i++) {
      const response = await apps[which].handle(
        new Request("http://payouts.bench/api/payouts/not-a-uuid/", { headers }),
      );
      if (response.status !== 404) throw new Error(`bench: the guard's route answered ${response.status}`);
      await response.arrayBuffer();
    }
    return ((performance.now() - started) * 1000) / PER_ROUND;
  };
  const times = { with: [] as number[], without: [] as number[] };
  await round("with");
  await round("without");
  for (let i = 0; i < ROUNDS; i++) {
    times.with.push(await round("with"));
    times.without.push(await round("without"));
  }
  await keys.stop();
  await database.close();
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  const withUs = median(times.with);
  const withoutUs = median(times.without);
  return {
    with_us: Number(withUs.toFixed(1)),
    without_us: Number(withoutUs.toFixed(1)),
    guard_us: Number((withUs - withoutUs).toFixed(1)),
  };
}
