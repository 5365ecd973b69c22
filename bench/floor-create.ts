// The create floor (issue 12): the thinnest correct create on the service's own stack, started by
// `bun run bench` next to the api and measured with the same load. Bun.serve parses the JSON body;
// creates arriving together are one multi-row INSERT and one commit; each request gets 201 with its
// row after that commit; then its id is published as a persistent message to a quorum queue and
// confirmed by the broker. No validation, idempotency, logging or metrics: what the service adds
// on top of this is what the bench's ratios measure.
//
// Environment: DATABASE_URL, AMQP_URL, PORT, FLOOR_QUEUE; DB_POOL_SIZE as the api reads it.

import amqp from "amqplib";
import postgres from "postgres";
import { loadConfig } from "../src/config";
import { isDatabaseUnavailable } from "../src/db/errors";
import { batched } from "../src/lib/batched";

type Body = { amount: string; currency: string; recipient_details: string; comment?: string };
type Row = { id: string } & Record<string, unknown>;

const config = loadConfig();
// A quorum queue the bench declares.
const queue = process.env.FLOOR_QUEUE ?? "floor";
const sql = postgres(config.databaseUrl as string, { max: config.dbPoolSize, onnotice: () => {} });
const connection = await amqp.connect(config.amqpUrl as string);
const channel = await connection.createConfirmChannel();

// The same batching as the api's creates (src/lib/batched.ts, same sizes): the floor differs from
// the service in what it leaves out, not in how it talks to PostgreSQL.
const insert = batched(
  async (bodies: Body[]) => {
    const ids = bodies.map(() => Bun.randomUUIDv7());
    const rows: Row[] = await sql`
      INSERT INTO payouts (id, amount, currency, recipient_details, comment)
      SELECT * FROM unnest(
        ${ids}::uuid[], ${bodies.map((b) => b.amount)}::numeric[],
        ${bodies.map((b) => b.currency)}::currency[], ${bodies.map((b) => b.recipient_details)}::varchar[],
        ${bodies.map((b) => b.comment ?? "")}::varchar[])
      RETURNING *`;
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) as Row);
  },
  { maxSize: 200, maxInFlight: 2, failsEveryInput: isDatabaseUnavailable },
);

const publish = (id: string) =>
  channel.sendToQueue(queue, Buffer.from(JSON.stringify({ id })), { persistent: true }, (err) => {
    if (err) process.stderr.write(`floor: publish of ${id} not confirmed: ${err}\n`);
  });

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
  async fetch(request) {
    if (request.method === "GET") return new Response("ok"); // readiness, for the bench
    const row = await insert((await request.json()) as Body);
    queueMicrotask(() => publish(row.id));
    return Response.json(row, { status: 201 });
  },
});

process.on("SIGTERM", async () => {
  await server.stop();
  await channel.waitForConfirms();
  await connection.close();
  await sql.end();
  process.exit(0);
});
