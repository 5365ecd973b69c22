// Preloaded by `bun test` (bunfig.toml): every run gets a fresh PostgreSQL database and a fresh
// RabbitMQ vhost, migrated and declared, named in DATABASE_URL and AMQP_URL for the tests and for
// the processes they spawn. Both are dropped when the run ends.
import { afterAll } from "bun:test";
import postgres from "postgres";
import { migratePostgres } from "../src/db/migrate";

const adminUrl = process.env.TEST_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const amqpBase = process.env.TEST_AMQP_BASE_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const suffix = `${process.pid}_${Date.now()}`;
const database = `payouts_test_${suffix}`;
const vhost = `payouts_test_${suffix}`;

const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`CREATE DATABASE "${database}"`);
const url = new URL(adminUrl);
url.pathname = `/${database}`;
process.env.DATABASE_URL = url.toString();
await migratePostgres(process.env.DATABASE_URL);

function rabbitmqctl(...args: string[]) {
  const result = Bun.spawnSync(["rabbitmqctl", "-q", ...args], { stderr: "pipe", stdout: "pipe" });
  if (result.exitCode !== 0) throw new Error(`rabbitmqctl ${args.join(" ")}: ${result.stderr.toString()}`);
}
rabbitmqctl("add_vhost", vhost);
rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
process.env.AMQP_URL = `${amqpBase}/${vhost}`;
process.env.LOG_LEVEL ??= "error";
// Several workers run at once in some tests: each takes a free port for its metrics.
process.env.METRICS_PORT ??= "0";

// rabbitmqctl alone can take seconds on a busy machine: more than a hook's default 5 s.
afterAll(async () => {
  rabbitmqctl("delete_vhost", vhost);
  await admin.unsafe(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
}, 60_000);
