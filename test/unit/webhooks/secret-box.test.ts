// Signing secrets sealed at rest: AES-256-GCM, the key id stored with each, the endpoint's id bound.
import { expect, test } from "bun:test";
import { secretBox, UnreadableSecret } from "../../../src/webhooks/secret-box";
import { newSecret } from "../../../src/webhooks/signing";

const k1 = { id: "k1", key: Buffer.alloc(32, 1) };
const k2 = { id: "k2", key: Buffer.alloc(32, 2) };
const ENDPOINT = "0193b6c2-8b20-7c3a-9a51-2f0c8e6d4b12";

test("a sealed secret opens to itself, is stored under the first key's id, and shows nothing of the secret", () => {
  const box = secretBox([k1]);
  const secret = newSecret();
  const sealed = box.seal(secret, ENDPOINT);
  expect(sealed).toMatch(/^v1:k1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
  expect(sealed).not.toContain(secret.slice("whsec_".length, 20));
  expect(box.open(sealed, ENDPOINT)).toBe(secret);
  // A fresh IV each time: the same secret never seals to the same text.
  expect(box.seal(secret, ENDPOINT)).not.toBe(sealed);
  expect(box.keyIdOf(sealed)).toBe("k1");
  expect(box.keyIdOf(secret)).toBeUndefined();
});

test("the first key seals, every listed key opens: a rotation reads what the old key sealed", () => {
  const old = secretBox([k1]).seal("whsec_old", ENDPOINT);
  const rotating = secretBox([k2, k1]);
  expect(rotating.open(old, ENDPOINT)).toBe("whsec_old");
  expect(rotating.keyIdOf(rotating.seal("whsec_new", ENDPOINT))).toBe("k2");
  expect(rotating.currentKeyId).toBe("k2");
});

test("what does not open is an UnreadableSecret naming the key id, never a key or the secret", () => {
  const sealed = secretBox([k1]).seal("whsec_abc", ENDPOINT);
  const others = secretBox([k2]);
  expect(() => others.open(sealed, ENDPOINT)).toThrow(UnreadableSecret);
  expect(() => others.open(sealed, ENDPOINT)).toThrow('sealed with key id "k1", not in WEBHOOK_SECRET_KEYS');
  // Another endpoint's row, a wrong key under the same id, a flipped byte: the tag refuses each.
  const box = secretBox([k1]);
  expect(() => box.open(sealed, "0193b6c2-8b20-7c3a-9a51-2f0c8e6d4b13")).toThrow('does not open with key id "k1"');
  expect(() => secretBox([{ id: "k1", key: Buffer.alloc(32, 3) }]).open(sealed, ENDPOINT)).toThrow(UnreadableSecret);
  const [v, id, iv, body] = sealed.split(":") as [string, string, string, string];
  const bytes = Buffer.from(body, "base64");
  bytes[0] = (bytes[0] as number) ^ 1;
  expect(() => box.open(`${v}:${id}:${iv}:${bytes.toString("base64")}`, ENDPOINT)).toThrow(UnreadableSecret);
  expect(() => box.open("whsec_abc", ENDPOINT)).toThrow("not sealed");
});
