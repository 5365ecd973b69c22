// The key's text, its hash and comparison: pure functions, no database.
import { describe, expect, test } from "bun:test";
import {
  bearerToken,
  DUMMY_DIGEST,
  formatKey,
  hashSecret,
  newSecret,
  parseKey,
  SECRET_LENGTH,
  sameDigest,
  tokenDigest,
} from "../../../src/keys/secret";

const ID = "0193b6c2-9c30-7c3a-9a51-2f0c8e6d4b13";

describe("newSecret", () => {
  test("is 43 base62 characters (256 bits), different every time", () => {
    const secrets = Array.from({ length: 2000 }, newSecret);
    for (const secret of secrets) expect(secret).toMatch(/^[0-9A-Za-z]{43}$/);
    expect(new Set(secrets).size).toBe(secrets.length);
    expect(SECRET_LENGTH * Math.log2(62)).toBeGreaterThanOrEqual(256);
  });

  test("draws every one of the 62 characters about equally often (no modulo bias toward the first ones)", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) for (const c of newSecret()) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const expected = (3000 * SECRET_LENGTH) / 62; // about 2081 each
    for (const count of counts.values()) expect(Math.abs(count - expected)).toBeLessThan(expected * 0.15);
  });
});

describe("formatKey and parseKey", () => {
  test("a key reads back as its id and secret", () => {
    const secret = newSecret();
    const key = formatKey(ID, secret);
    expect(key).toBe(`pk_${ID}_${secret}`);
    expect(parseKey(key)).toEqual({ id: ID, secret });
  });

  test.each([
    ["empty", ""],
    ["no prefix", `${ID}_${"a".repeat(43)}`],
    ["another prefix", `sk_${ID}_${"a".repeat(43)}`],
    ["an upper-case id", `pk_${ID.toUpperCase()}_${"a".repeat(43)}`],
    ["an id that is not a UUID", `pk_0193b6c2_${"a".repeat(43)}`],
    ["a short secret", `pk_${ID}_${"a".repeat(42)}`],
    ["a long secret", `pk_${ID}_${"a".repeat(44)}`],
    ["a secret outside base62", `pk_${ID}_${"a".repeat(42)}-`],
    ["trailing space", `pk_${ID}_${"a".repeat(43)} `],
    ["a newline inside", `pk_${ID}_${"a".repeat(21)}\n${"a".repeat(21)}`],
  ])("%s is not a key", (_, text) => {
    expect(parseKey(text)).toBeUndefined();
  });
});

describe("bearerToken", () => {
  test.each([
    ["Bearer abc", "abc"],
    ["bearer abc", "abc"],
    ["BEARER   abc", "abc"],
    ["Bearer abc ", "abc"],
  ])("%j carries %j", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  test.each([[null], [""], ["Bearer"], ["Bearer "], ["Basic abc"], ["Bearer a b"], ["Bearerabc"], ["Token abc"]])(
    "%j carries none",
    (header) => {
      expect(bearerToken(header)).toBeUndefined();
    },
  );
});

describe("hashSecret and sameDigest", () => {
  test("the hash is the 32-byte SHA-256, the same for the same secret", () => {
    const secret = newSecret();
    expect(hashSecret(secret)).toHaveLength(32);
    expect(hashSecret(secret).equals(new Bun.CryptoHasher("sha256").update(secret).digest() as Buffer)).toBe(true);
    expect(sameDigest(hashSecret(secret), hashSecret(secret))).toBe(true);
  });

  test("another secret, a digest of another length, and the dummy all differ", () => {
    const digest = hashSecret(newSecret());
    expect(sameDigest(digest, hashSecret(newSecret()))).toBe(false);
    expect(sameDigest(digest, digest.subarray(0, 31))).toBe(false);
    expect(sameDigest(digest, DUMMY_DIGEST)).toBe(false);
  });

  test("the cache's digest of a key holds neither the key nor its secret", () => {
    const secret = newSecret();
    const digest = tokenDigest(formatKey(ID, secret));
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(digest).not.toContain(secret);
    expect(tokenDigest(formatKey(ID, secret))).toBe(digest);
  });
});
