// A webhook receiver as a client would run one: a real HTTP server on 127.0.0.1 that checks every
// request with the standardwebhooks library (not with our own signing code) and records it.
import type { Server } from "bun";
import { Webhook } from "standardwebhooks";

export type Received = {
  id: string;
  body: string;
  event: { id: string; type: string; payout_id: string; data: Record<string, unknown>; [k: string]: unknown };
  /** For each secret the receiver knows, whether the request's signature verifies with it. */
  verified: boolean[];
  at: number;
};

export type Answer = (request: Request, count: number) => Response | Promise<Response>;

const verifies = (secret: string, body: string, headers: Headers) => {
  try {
    new Webhook(secret).verify(body, Object.fromEntries(headers));
    return true;
  } catch {
    return false;
  }
};

/** Answers 200 unless told otherwise; `secrets` may change while it runs (a rotation). */
export function startReceiver(secrets: string[], answer: Answer = () => new Response("ok"), port = 0) {
  const received: Received[] = [];
  let server: Server<undefined> | undefined;
  const receiver = {
    secrets,
    received,
    answer,
    get url() {
      return `http://127.0.0.1:${server?.port}/hooks`;
    },
    get port() {
      return server?.port as number;
    },
    start(onPort = port) {
      server = Bun.serve({
        hostname: "127.0.0.1",
        port: onPort,
        fetch: async (request) => {
          const body = await request.text();
          received.push({
            id: request.headers.get("webhook-id") ?? "",
            body,
            event: JSON.parse(body),
            verified: receiver.secrets.map((s) => verifies(s, body, request.headers)),
            at: Date.now(),
          });
          return receiver.answer(request, received.length);
        },
      });
      return receiver;
    },
    /** Down: connections are refused from now on. */
    stop() {
      server?.stop(true);
    },
  };
  return receiver.start();
}
