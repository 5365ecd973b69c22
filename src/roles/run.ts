import type { Logger } from "../lib/log";
import { onShutdown } from "./lifecycle";

/**
 * One part of a role: started in the role's order, stopped in the reverse order. A component's
 * stop() finishes or hands back what it has in flight before it resolves, so whatever started
 * before it (and so stops after it) is still there while it does.
 */
export type Component = {
  name: string;
  start(): unknown;
  stop(): unknown;
};

/** A component that opens something the later ones use (a pool, a queue): `value` once started. */
export type Resource<T> = Component & {
  readonly value: T;
  /** The value, or undefined before start: for a component that may be asked before it is up. */
  readonly current: T | undefined;
};

export function resource<T>(
  name: string,
  open: () => T | Promise<T>,
  close: (value: T) => unknown = () => {},
): Resource<T> {
  let current: { value: T } | undefined;
  return {
    name,
    async start() {
      current = { value: await open() };
    },
    async stop() {
      if (current) await close(current.value);
    },
    get value() {
      if (!current) throw new Error(`${name} is used before it started`);
      return current.value;
    },
    get current() {
      return current?.value;
    },
  };
}

type Running = {
  /** Stops every started component in reverse order; one that fails to stop does not keep the others running. */
  stop(): Promise<void>;
};

/**
 * Starts `components` in order. Should one fail to start, those already started are stopped
 * (in reverse) and its error is thrown, to be reported once by whoever catches it.
 */
export async function start(components: Component[], log: Logger): Promise<Running> {
  const started: Component[] = [];
  const stop = async () => {
    const failed: unknown[] = [];
    for (const component of started.reverse()) {
      try {
        await component.stop();
        log.info("component stopped", { component: component.name });
      } catch (err) {
        failed.push(err);
        log.error("component failed to stop", { component: component.name, err });
      }
    }
    started.length = 0;
    if (failed.length > 0) throw new AggregateError(failed, `${failed.length} component(s) failed to stop`);
  };
  for (const component of components) {
    try {
      await component.start();
    } catch (err) {
      await stop().catch(() => {});
      throw err;
    }
    started.push(component);
    log.info("component started", { component: component.name });
  }
  return { stop };
}

/**
 * A process's role: starts its components, then SIGTERM and SIGINT stop them in reverse order
 * (src/roles/lifecycle.ts): exit 0 when every one stopped, 1 when one failed to. Until every
 * component has started, a signal exits at once, as it does before any role is set up.
 */
export async function run(components: Component[], log: Logger): Promise<void> {
  const running = await start(components, log);
  onShutdown(running.stop);
}
