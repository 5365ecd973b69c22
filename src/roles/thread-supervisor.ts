import { compiledBinary } from "../lib/binary";
import type { Logger } from "../lib/log";
import { deadline } from "../lib/timers";
import { type MetricsReport, registry } from "../metrics";

const RESTART_DELAY_MS = 1000;

// From source, worker-thread.ts sits beside this file. The compiled binary holds it as a second entry
// point (see the build script), at its path under src/ in the embedded filesystem, while this
// module is bundled into the main entry at that filesystem's root.
const THREAD_ENTRY = new URL(compiledBinary ? "./roles/worker-thread.ts" : "./worker-thread.ts", import.meta.url).href;

/**
 * Starts `count` worker threads and keeps them running: a thread that dies is replaced. stop()
 * asks each thread to drain (stop consuming, finish or hand back its messages, close) and waits.
 */
export function startWorkerThreads(
  { log }: { log: Logger },
  { count, entry = THREAD_ENTRY }: { count: number; entry?: string },
) {
  const threads = new Set<Worker>();
  // Each thread's payouts in flight, as it last reported them (every 100 ms).
  const loads = new Map<Worker, number>();
  const restarts = new Set<Timer>();
  let stopping = false;
  // Metrics scrapes waiting for a thread's report: called when it reports or exits.
  const waiting = new Map<Worker, (() => void)[]>();
  const reported = (thread: Worker) => {
    for (const done of waiting.get(thread) ?? []) done();
    waiting.delete(thread);
  };

  const spawn = (index: number) => {
    const thread = new Worker(entry);
    threads.add(thread);
    thread.addEventListener("error", (event) => log.error("worker thread error", { index, err: event.message }));
    thread.addEventListener("message", (event) => {
      if (event.data?.type === "load") loads.set(thread, event.data.inFlight as number);
      if (event.data?.type !== "metrics") return;
      registry.absorb(event.data.report as MetricsReport, thread);
      reported(thread);
    });
    thread.addEventListener("close", (event) => {
      threads.delete(thread);
      loads.delete(thread);
      // Its counts stay in the registry; its gauges (payouts in flight) went with it.
      registry.forget(thread);
      reported(thread);
      if (stopping) return;
      log.error("worker thread exited; restarting", { index, code: (event as CloseEvent).code });
      const timer = setTimeout(() => {
        restarts.delete(timer);
        spawn(index);
      }, RESTART_DELAY_MS);
      restarts.add(timer);
    });
  };

  for (let i = 0; i < count; i++) spawn(i);
  log.info("worker threads started", { count });

  return {
    /** Restarts waiting for their delay; stop() cancels them all. */
    get pendingRestarts() {
      return restarts.size;
    },
    get size() {
      return threads.size;
    },
    /** Payouts the threads are processing, as they last reported. */
    get inFlight() {
      let sum = 0;
      for (const n of loads.values()) sum += n;
      return sum;
    },
    /**
     * Asks every thread for its metrics and waits for the answers, which land in this process's
     * registry. A thread that has not answered within `timeoutMs` is left out of this scrape; its
     * counts arrive with a later answer, none is lost.
     */
    async collectMetrics(timeoutMs = 1000): Promise<void> {
      const answers = [...threads].map(
        (thread) =>
          new Promise<void>((resolve) => {
            waiting.set(thread, [...(waiting.get(thread) ?? []), resolve]);
            thread.postMessage({ type: "metrics" });
          }),
      );
      await deadline(Promise.all(answers), timeoutMs).catch(() => {});
    },
    async stop(): Promise<void> {
      stopping = true;
      for (const timer of restarts) clearTimeout(timer);
      restarts.clear();
      await Promise.all(
        [...threads].map(
          (thread) =>
            new Promise<void>((resolve) => {
              thread.addEventListener("message", (event) => {
                if (event.data?.type === "stopped") {
                  thread.terminate();
                  resolve();
                }
              });
              thread.addEventListener("close", () => resolve());
              thread.postMessage({ type: "stop" });
            }),
        ),
      );
      log.info("worker threads stopped");
    },
  };
}

export type WorkerThreads = ReturnType<typeof startWorkerThreads>;
