// Our signatures as a receiver checks them: with the standardwebhooks library, not our own code.
import { expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { newSecret, signatureHeader } from "../../../src/webhooks/signing";

const id = "msg_0193b6c2";
const body = JSON.stringify({ type: "payout.created", amount: "1500.00" });
const headers = (signature: string, timestamp: number) => ({
  "webhook-id": id,
  "webhook-timestamp": String(timestamp),
  "webhook-signature": signature,
});

test("a new secret is whsec_ and 32 random bytes in base64", () => {
  expect(newSecret()).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  expect(newSecret()).not.toBe(newSecret());
});

test("one signature per secret; a receiver knowing either secret verifies, one knowing neither does not", () => {
  const [current, previous, other] = [newSecret(), newSecret(), newSecret()];
  const now = Math.floor(Date.now() / 1000);
  const signature = signatureHeader([current, previous], id, now, body);
  expect(signature.split(" ")).toHaveLength(2);
  expect(new Webhook(current).verify(body, headers(signature, now))).toEqual(JSON.parse(body));
  expect(new Webhook(previous).verify(body, headers(signature, now))).toEqual(JSON.parse(body));
  expect(() => new Webhook(other).verify(body, headers(signature, now))).toThrow();
  expect(() => new Webhook(current).verify(`${body} `, headers(signature, now))).toThrow();
});
