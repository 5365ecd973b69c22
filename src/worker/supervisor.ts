import type { Logger } from "../log";

const RESTART_DELAY_MS = 1000;

/**
 * Starts `count` worker threads and keeps them running: a thread that dies is replaced. stop()
 * asks each thread to drain (stop consuming, finish or hand back its messages, close) and waits.
 */
export function startWorkerThreads(count: number, log: Logger) {
  const threads = new Set<Worker>();
  let stopping = false;

  const spawn = (index: number) => {
    const thread = new Worker(new URL("./thread.ts", import.meta.url).href);
    threads.add(thread);
    thread.addEventListener("error", (event) => log.error("worker thread error", { index, err: event.message }));
    thread.addEventListener("close", (event) => {
      threads.delete(thread);
      if (stopping) return;
      log.error("worker thread exited; restarting", { index, code: (event as CloseEvent).code });
      setTimeout(() => spawn(index), RESTART_DELAY_MS);
    });
  };

  for (let i = 0; i < count; i++) spawn(i);
  log.info("worker threads started", { count });

  return {
    get size() {
      return threads.size;
    },
    async stop(): Promise<void> {
      stopping = true;
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
