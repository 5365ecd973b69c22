// The outbox's relay on the real database and broker: what it publishes, when, and how often.
import { expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { payoutOutbox } from "../../../src/db/schema";
import { QUEUE } from "../../../src/queue/rabbitmq/topology";
import { inOutbox, insertPayout, ledger, payout, reaches } from "../../kit/fixtures";
import { eventually } from "../../kit/wait";
import { processingFixtures, startApi, startOutbox, startPublisher, startWorker } from "./harness";

const fixtures = processingFixtures(10);
const { database } = fixtures;

const ago = (seconds: number) => sql`now() - make_interval(secs => ${seconds})`;

test("the relay publishes a payout that the hand-off missed once its grace is over, and leaves a younger one to the hand-off", async () => {
  const outbox = startOutbox(database, await startPublisher(), { graceMs: 5000 });
  // Plain INSERTs, as an operator's psql would write them: the trigger queues each NEW payout.
  const missed = await insertPayout(database);
  await database.db.execute(
    sql`UPDATE payout_outbox SET created_at = now() - interval '10 seconds' WHERE payout_id = ${missed.id}`,
  );
  const young = await insertPayout(database);
  const processing = await insertPayout(database, { status: "PROCESSING", attempts: 1, claimedAt: ago(0) });
  expect(await inOutbox(database, processing.id)).toBe(false);

  expect(await outbox.relayOnce()).toBe(1);
  expect(await inOutbox(database, missed.id)).toBe(false);
  expect(await inOutbox(database, young.id)).toBe(true);
  // The outbox row is all that changed: the payout itself is not written to.
  expect((await payout(database, missed.id)).publishedAt).toBeNull();
  expect((await fixtures.broker.depth(QUEUE)).messages).toBe(1);
  expect(await outbox.relayOnce()).toBe(0);
});

test("relays on several replicas at once publish each payout exactly once", async () => {
  const publisher = await startPublisher();
  const relays = [1, 2, 3].map(() => startOutbox(database, publisher));
  await database.db.execute(sql`
    INSERT INTO payouts (id, amount, currency, recipient_details, created_at)
    SELECT gen_random_uuid(), 1, 'USD', 'x', now() - interval '1 minute' FROM generate_series(1, 1200)`);
  await database.db.execute(sql`UPDATE payout_outbox SET created_at = now() - interval '1 minute'`);

  const published = await Promise.all(
    relays.map(async (relay) => {
      let total = 0;
      for (let n = await relay.relayOnce(); n > 0; n = await relay.relayOnce()) total += n;
      return total;
    }),
  );

  expect(published.reduce((a, b) => a + b, 0)).toBe(1200);
  await eventually(async () => (await fixtures.broker.depth(QUEUE)).messages === 1200);
  expect(await database.db.$count(payoutOutbox)).toBe(0);
}, 30_000);

test("a PROCESSING payout whose message was lost is published again for takeover and completes, paid once", async () => {
  const outbox = startOutbox(database, await startPublisher(), { stuckAfterMs: 60_000 });
  const stuck = await insertPayout(database, {
    status: "PROCESSING",
    attempts: 1,
    createdAt: ago(600),
    publishedAt: ago(600),
    claimedAt: ago(300),
    // A client edited its comment a second ago: that says nothing about whether a worker holds it.
    updatedAt: ago(1),
  });
  const held = await insertPayout(database, {
    status: "PROCESSING",
    attempts: 1,
    publishedAt: ago(600),
    claimedAt: ago(1),
  });
  await startWorker(fixtures.broker);

  expect(await outbox.relayOnce()).toBe(1);
  const done = await reaches(database, stuck.id, "COMPLETED");
  expect(done.attempts).toBe(2);
  expect(await ledger(database, stuck.id)).toEqual({ payments: 1, calls: 1 });
  // A recent holder is left alone.
  expect(await payout(database, held.id)).toEqual(held);
});

test("NEW payouts whose messages the broker lost (a purged queue) are published again after the bound and complete, paid once", async () => {
  const api = await startApi(database);
  const ids = await Promise.all(Array.from({ length: 20 }, () => api.createPublished()));
  // The broker loses every message it had confirmed: nothing will ever deliver these.
  await fixtures.broker.channel.purgeQueue(QUEUE);
  const publisher = await startPublisher();
  // Within the bound, a published payout is left to its message.
  expect(await startOutbox(database, publisher, { republishAfterMs: 600_000 }).relayOnce()).toBe(0);

  await startWorker(fixtures.broker);
  startOutbox(database, publisher, { republishAfterMs: 1000 }).start();
  for (const id of ids) {
    const done = await reaches(database, id, "COMPLETED");
    expect(done.attempts).toBe(1);
    expect(await ledger(database, id)).toEqual({ payments: 1, calls: 1 });
  }
});

test("a lost NEW payout is published again once per bound, not on every pass", async () => {
  const outbox = startOutbox(database, await startPublisher(), { republishAfterMs: 10_000 });
  const lost = await insertPayout(database, { createdAt: ago(20) });
  // Its hand-off was confirmed (the outbox row deleted), and then the broker lost the message.
  await database.db.execute(sql`DELETE FROM payout_outbox WHERE payout_id = ${lost.id}`);
  const recent = await insertPayout(database, { createdAt: ago(5) });
  await database.db.execute(sql`DELETE FROM payout_outbox WHERE payout_id = ${recent.id}`);

  expect(await outbox.relayOnce()).toBe(1);
  expect((await payout(database, lost.id)).publishedAt).toBeInstanceOf(Date);
  expect((await payout(database, recent.id)).publishedAt).toBeNull();
  expect(await outbox.relayOnce()).toBe(0);
  expect((await fixtures.broker.depth(QUEUE)).messages).toBe(1);
});

test("a hand-off takes its payout out of the outbox once confirmed, and stopping clears what is still gathered", async () => {
  const outbox = startOutbox(database, await startPublisher());
  const first = await insertPayout(database);
  outbox.handOff(first.id);
  await eventually(async () => !(await inOutbox(database, first.id)));
  const second = await insertPayout(database);
  outbox.handOff(second.id);
  await outbox.stop();
  expect(await inOutbox(database, second.id)).toBe(false);
  expect((await fixtures.broker.depth(QUEUE)).messages).toBe(2);
});
