/**
 * The clock port: the time of day, in milliseconds since the epoch. The composition root chooses
 * it (main.ts, the worker thread) and passes it to what decides by it: a create's deadline, the
 * processor's window for writing through an outage, a webhook's signed timestamp. Timers
 * (setTimeout, Bun.sleep) still run in real time: another clock moves what is decided, not how
 * long anything waits.
 *
 * The database keeps a clock of its own (now(), clock_timestamp()) for the rules that must be
 * judged inside the statement that writes by them, so that every replica judges alike: whether a
 * create is still before its deadline, when an idempotency key expires, when a webhook is due.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
