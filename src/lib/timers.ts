import type { Logger } from "./log";

/** What `deadline` rejects with when it is given no error of its own. */
export class DeadlineExceeded extends Error {}

/**
 * `promise`, or a rejection with `late(ms)` once `ms` have passed without it settling. The deadline
 * ends the wait, not the work: the promise runs on, and its outcome is no longer anybody's. The
 * timer is cleared when the promise settles first, so no deadline keeps a process alive.
 */
export function deadline<T>(
  promise: Promise<T>,
  ms: number,
  late: (ms: number) => Error = (ms) => new DeadlineExceeded(`no answer within ${ms} ms`),
): Promise<T> {
  let timer: Timer | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late(ms)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export type Loop = {
  /** Cancels the next pass; resolves once the pass in flight, if any, has ended. */
  stop(): Promise<void>;
  /** Runs the next pass now, or right after the one in flight: work turned up before its time. */
  wake(): void;
};

type EveryOptions = {
  /** Names the loop in the line a failed pass logs ("<name> failed; will try again"). */
  name: string;
  /** Where a failed pass is reported; a pass that settles its own errors (the probe) needs none. */
  log?: Logger;
  /** When the first pass runs: at once (on the next tick) unless told otherwise. */
  firstAfterMs?: number;
};

/**
 * The one background loop: runs `pass`, then again `ms` after it ended (or after the ms the pass
 * returns, when it knows better: more work is waiting). Passes never overlap, and a slow pass
 * delays the next one instead of piling passes up. A pass that throws is logged and the loop goes
 * on. `pass` is given a signal that aborts when stop() is called, so that a pass made of several
 * steps (batch after batch) ends after the step in flight rather than running on.
 */
export function every(
  ms: number,
  // biome-ignore lint/suspicious/noConfusingVoidType: a pass with nothing to say is a plain async function
  pass: (stopping: AbortSignal) => Promise<number | void>,
  { name, log, firstAfterMs = 0 }: EveryOptions,
): Loop {
  const stopping = new AbortController();
  let timer: Timer | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let running = false;
  let woken = false;

  const run = async () => {
    running = true;
    woken = false;
    let next: number | undefined;
    try {
      next = (await pass(stopping.signal)) ?? undefined;
    } catch (err) {
      log?.warn(`${name} failed; will try again`, { err });
    }
    running = false;
    if (!stopping.signal.aborted) schedule(woken ? 0 : (next ?? ms));
  };
  const schedule = (after: number) => {
    timer = setTimeout(() => {
      timer = undefined;
      inFlight = run();
    }, after);
  };
  schedule(firstAfterMs);

  return {
    async stop() {
      stopping.abort();
      clearTimeout(timer);
      await inFlight;
    },
    wake() {
      if (stopping.signal.aborted) return;
      if (running) woken = true;
      else if (timer !== undefined) {
        clearTimeout(timer);
        schedule(0);
      }
    },
  };
}
