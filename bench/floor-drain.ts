// The drain floor (issue 12): the thinnest correct consumer on the service's own stack, started by
// `bun run bench` next to the worker and fed the same queued payouts. It consumes the create
// floor's ids with the worker's in-flight limits (WORKER_THREADS consumers, each with the worker's
// prefetch of twice WORKER_CONCURRENCY), claims NEW -> PROCESSING, writes the gateway's ledger row
// and sets COMPLETED, each step one statement (one commit) per group of messages, and acks a
// message after its completion is committed. No gateway call, retries, logging or metrics.
//
// Environment: DATABASE_URL, AMQP_URL, FLOOR_QUEUE; DB_POOL_SIZE, WORKER_THREADS and
// WORKER_CONCURRENCY as the worker reads them.

import amqp, { type ConsumeMessage } from "amqplib";
import postgres from "postgres";
import { loadConfig } from "../src/config";
import { isDatabaseUnavailable } from "../src/db/errors";
import { batched } from "../src/lib/batched";

type Claimed = { id: string; amount: string; currency: string };

const config = loadConfig();
// A quorum queue the bench declares.
const queue = process.env.FLOOR_QUEUE ?? "floor";
const sql = postgres(config.databaseUrl as string, { max: config.dbPoolSize, onnotice: () => {} });

// Each step batched as the worker's processor batches it (src/lib/batched.ts, same sizes).
const steps = { maxSize: 500, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable };

const claim = batched(async (ids: string[]) => {
  const rows: Claimed[] = await sql`
    UPDATE payouts SET status = 'PROCESSING', attempts = attempts + 1, claimed_at = now(), updated_at = now()
    WHERE id = ANY(${ids}::uuid[]) AND status = 'NEW'
    RETURNING id, amount, currency`;
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id));
}, steps);

// Keys sorted, so that concurrent batches lock the ledger in one order.
const record = batched(async (claims: Claimed[]) => {
  const sorted = claims.toSorted((a, b) => (a.id < b.id ? -1 : 1));
  await sql`
    INSERT INTO simulated_gateway_payments (idempotency_key, payout_id, amount, currency)
    SELECT * FROM unnest(${sorted.map((c) => c.id)}::varchar[], ${sorted.map((c) => c.id)}::uuid[],
      ${sorted.map((c) => c.amount)}::numeric[], ${sorted.map((c) => c.currency)}::currency[])
    ON CONFLICT (idempotency_key) DO UPDATE SET calls = simulated_gateway_payments.calls + 1`;
  return claims.map(() => true);
}, steps);

const complete = batched(async (ids: string[]) => {
  await sql`
    UPDATE payouts SET status = 'COMPLETED', processed_at = now(), updated_at = now()
    WHERE id = ANY(${ids}::uuid[]) AND status = 'PROCESSING'`;
  return ids.map(() => true);
}, steps);

const connection = await amqp.connect(config.amqpUrl as string);
for (let i = 0; i < config.workerThreads; i++) {
  const channel = await connection.createChannel();
  await channel.prefetch(config.workerConcurrency * 2);
  await channel.consume(queue, (msg: ConsumeMessage | null) => {
    if (!msg) return;
    const { id } = JSON.parse(msg.content.toString()) as { id: string };
    claim(id)
      .then(async (claimed) => {
        if (claimed) {
          await record(claimed);
          await complete(id);
        }
        channel.ack(msg);
      })
      .catch((err) => {
        process.stderr.write(`floor: payout ${id} not processed, handed back: ${err}\n`);
        channel.nack(msg);
      });
  });
}

process.on("SIGTERM", async () => {
  await connection.close();
  await sql.end();
  process.exit(0);
});
