// RabbitMQ seen through a proxy that the test cuts and restores. In the api's tests, the api process
// (`--role=api`) goes through the proxy and the worker, in this process, consumes from the real
// broker and runs no relay: only the api can publish.
import { expect, test } from "bun:test";
import { QUEUE } from "../../../src/queue/rabbitmq/topology";
import { startBrokerProxy } from "../../kit/broker";
import { inOutbox, ledger, payout, reaches } from "../../kit/fixtures";
import { freePort, spawnRole, withKey } from "../../kit/processes";
import { eventually } from "../../kit/wait";
import { processingFixtures, spawnWorker, startApi, startWorker } from "./harness";

const fixtures = processingFixtures();
const { database } = fixtures;

const body = { amount: "250.00", currency: "EUR", recipient_details: "DE89370400440532013000" };

async function startApiProcess(amqpUrl: string) {
  const base = `http://127.0.0.1:${freePort()}`;
  const child = spawnRole("api", {
    AMQP_URL: amqpUrl,
    HOST: "127.0.0.1",
    PORT: new URL(base).port,
    RELAY_INTERVAL_MS: "100",
  });
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the api exited with ${child.exitCode}`);
    return (await fetch(`${base}/health/live`).catch(() => undefined))?.ok;
  }, 20_000);
  const broker = async () => ((await (await fetch(`${base}/health/ready`)).json()) as { broker: string }).broker;
  const create = async () => {
    const response = await fetch(`${base}/api/payouts/`, {
      method: "POST",
      headers: await withKey({ "content-type": "application/json" }),
      body: JSON.stringify(body),
    });
    return { status: response.status, id: ((await response.json()) as { id: string }).id };
  };
  return { base, broker, create };
}

test("RabbitMQ unreachable from the start: the api answers 201, and the relay publishes the payout once the broker is back", async () => {
  const proxy = startBrokerProxy();
  proxy.refuse();
  const api = await startApiProcess(proxy.url);
  await startWorker(fixtures.broker);

  const ready = await fetch(`${api.base}/health/ready`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toMatchObject({ status: "ready", database: "up", broker: "down" });

  const created = await api.create();
  expect(created.status).toBe(201);
  const stored = await payout(database, created.id);
  expect(stored.status).toBe("NEW");
  expect(await inOutbox(database, created.id)).toBe(true);

  proxy.heal();
  await eventually(async () => (await api.broker()) === "up", 20_000);
  await reaches(database, created.id, "COMPLETED", 30_000);
  expect(await inOutbox(database, created.id)).toBe(false);
  expect(await ledger(database, created.id)).toEqual({ payments: 1, calls: 1 });
}, 60_000);

test("RabbitMQ lost while the api runs: payouts created during the outage get 201 and are processed once it ends", async () => {
  const proxy = startBrokerProxy();
  const api = await startApiProcess(proxy.url);
  await startWorker(fixtures.broker);
  await eventually(async () => (await api.broker()) === "up", 20_000);
  const before = await api.create();
  await reaches(database, before.id, "COMPLETED");

  proxy.refuse();
  await eventually(async () => (await api.broker()) === "down");
  const during = await Promise.all([api.create(), api.create(), api.create()]);
  for (const created of during) expect(created.status).toBe(201);

  proxy.heal();
  for (const { id } of during) {
    await reaches(database, id, "COMPLETED", 30_000);
    expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });
  }
  expect(await ledger(database, before.id)).toEqual({ payments: 1, calls: 1 });
}, 60_000);

test("a worker that loses RabbitMQ mid-payout reconnects, subscribes again, and everything ends COMPLETED, paid once", async () => {
  const proxy = startBrokerProxy();
  const api = await startApi(database);
  await spawnWorker(fixtures.broker, { AMQP_URL: proxy.url, GATEWAY_LATENCY_MS: "1500" });
  const inFlight = await api.create();
  await eventually(async () => (await ledger(database, inFlight)).payments === 1);

  proxy.refuse();
  // The broker saw the worker go: the unacked message is back in the queue.
  await eventually(async () => (await fixtures.broker.depth(QUEUE)).consumers === 0);
  const meanwhile = await api.create();
  proxy.heal();

  for (const id of [inFlight, meanwhile]) {
    const done = await reaches(database, id, "COMPLETED", 30_000);
    expect(done.failureReason).toBeNull();
    expect((await ledger(database, id)).payments).toBe(1);
  }
}, 60_000);
