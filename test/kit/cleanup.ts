const cleanups: (() => Promise<void>)[] = [];

/** Runs `stop` in runCleanups() (stopEverything() for the processes' tests): what a test starts by hand. */
export function onCleanup(stop: () => Promise<void>) {
  cleanups.push(stop);
}

/**
 * Stops what the tests started, in reverse order, even when the test failed. One failing stop does
 * not keep the others from running.
 */
export async function runCleanups(): Promise<void> {
  const failures: unknown[] = [];
  for (let stop = cleanups.pop(); stop; stop = cleanups.pop()) await stop().catch((err) => failures.push(err));
  if (failures.length > 0) throw new AggregateError(failures, "stopping what the test started failed");
}
