type BatchOptions = {
  /** Largest batch one statement takes. */
  maxSize: number;
  /** Batches running at once; calls arriving meanwhile wait and form the next batch. */
  maxInFlight: number;
  /** An error that would fail each input alone too (the database is out of reach): not retried one by one. */
  failsEveryInput: (error: unknown) => boolean;
};

type Pending<I, O> = { input: I; resolve: (output: O) => void; reject: (error: unknown) => void };

/**
 * Coalesces single calls into batches, one statement (one round trip, one commit) per batch.
 * Idle, a call runs at once, alone; under load, calls that arrive while `maxInFlight` batches are
 * running share the next one. Each caller still waits for its own batch's commit, so nothing is
 * acknowledged before it is durable.
 *
 * `run` gets the inputs and returns one output per input, in the same order. When a batch of
 * several fails, each input is run again on its own, so that one bad row never fails its
 * neighbours; not when the database is out of reach, which would only fail each again. `run` must
 * therefore be idempotent: a batch whose commit was lost with its connection may have committed,
 * and its inputs then run a second time.
 */
export function batched<I, O>(run: (inputs: I[]) => Promise<O[]>, options: BatchOptions): (input: I) => Promise<O> {
  const queue: Pending<I, O>[] = [];
  let inFlight = 0;

  const settle = async (batch: Pending<I, O>[]) => {
    try {
      const outputs = await run(batch.map((p) => p.input));
      if (outputs.length !== batch.length) {
        throw new Error(`a batch of ${batch.length} returned ${outputs.length} outputs`);
      }
      for (const [i, p] of batch.entries()) p.resolve(outputs[i] as O);
    } catch (error) {
      if (batch.length === 1 || options.failsEveryInput(error)) for (const p of batch) p.reject(error);
      else await Promise.all(batch.map((p) => settle([p])));
    }
  };

  const pump = () => {
    while (queue.length > 0 && inFlight < options.maxInFlight) {
      const batch = queue.splice(0, options.maxSize);
      inFlight++;
      void settle(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  };

  return (input) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      // Calls made in the same tick join one batch.
      if (queue.length === 1) queueMicrotask(pump);
    });
}
