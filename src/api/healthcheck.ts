import type { Config } from "../config";

/**
 * `payouts --healthcheck`: whether the api in this container answers /health/ready with 200 in
 * time. Docker's HEALTHCHECK runs it, since the runtime image has no curl or shell.
 */
export async function apiIsReady(config: Pick<Config, "host" | "port">, timeoutMs = 3000): Promise<boolean> {
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${config.port}/health/ready`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return response.status === 200;
  } catch {
    return false;
  }
}
