import { readFileSync } from "node:fs";
import type { Config, Role } from "../config";

/**
 * The command line of the container's first process (PID 1: the binary itself, or an init such as
 * Docker's `init: true` that runs it with its arguments): a healthcheck started beside it finds
 * the container's `--role` there. Empty where it cannot be read.
 */
export function containerArgs(cmdline = "/proc/1/cmdline"): string[] {
  try {
    return readFileSync(cmdline, "utf8").split("\0");
  } catch {
    return [];
  }
}

/**
 * `payouts --healthcheck`: whether this container's role is healthy, asked over HTTP on the
 * loopback within `timeoutMs`. Docker's HEALTHCHECK runs it, since the runtime image has no curl
 * or shell. The api (and role `all`) must answer /health/ready with 200 on PORT; the worker
 * /health on METRICS_PORT, where it reports its threads.
 */
export async function roleIsHealthy(
  role: Role,
  config: Pick<Config, "host" | "port" | "metricsPort">,
  timeoutMs = 3000,
): Promise<boolean> {
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const [port, path] = role === "worker" ? [config.metricsPort, "/health"] : [config.port, "/health/ready"];
  try {
    const response = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.status === 200;
  } catch {
    return false;
  }
}
