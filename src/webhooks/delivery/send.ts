import type { Clock } from "../../lib/clock";
import { refusedAddress, schemeProblem } from "../addresses";
import { signatureHeader } from "../signing";

/** What one attempt's POST came to. */
export type Outcome =
  | { outcome: "success"; status: number }
  | {
      outcome: "http_error" | "timeout" | "network_error" | "refused_address" | "unreadable_secret";
      status: number | null;
      error: string;
    };

/** What the attempt is sent to, and with which secrets it is signed. */
type Target = { url: string; secrets: string[]; eventId: string };

/**
 * POSTs one event's body to its endpoint, Standard Webhooks signed, after checking the address it
 * resolves to. Never throws: every way an attempt can go wrong is an Outcome.
 */
export async function send(
  target: Target,
  body: string,
  options: { timeoutMs: number; allowPrivateNetworks: boolean; allowHttp: boolean },
  clock: Clock,
): Promise<Outcome> {
  const url = new URL(target.url);
  const refused = schemeProblem(url, options.allowHttp) ?? (await refusedAddress(url, options.allowPrivateNetworks));
  if (refused) return { outcome: "refused_address", status: null, error: `refused address: the url ${refused}` };
  const timestamp = Math.floor(clock.now() / 1000);
  try {
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "user-agent": "payouts-webhooks",
        "webhook-id": target.eventId,
        "webhook-timestamp": `${timestamp}`,
        "webhook-signature": signatureHeader(target.secrets, target.eventId, timestamp, body),
      },
      // A redirect is the receiver's answer, not a new address to send the payout's data to.
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    // The answer's body is not needed; not reading it would hold the connection.
    await response.body?.cancel().catch(() => {});
    if (response.status >= 200 && response.status < 300) return { outcome: "success", status: response.status };
    return { outcome: "http_error", status: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") {
      return { outcome: "timeout", status: null, error: `no answer within ${options.timeoutMs} ms` };
    }
    const code = (error as { code?: string }).code;
    return { outcome: "network_error", status: null, error: `connection failed${code ? `: ${code}` : ""}` };
  }
}
