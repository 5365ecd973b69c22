import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/*
 * The API key's text: pk_<id>_<secret>. The prefix makes a leaked key easy to find in logs and
 * code scans; the id inside finds the key's row without a scan; the secret is 43 base62
 * characters, 256 random bits (the contract asks for at least 128). Base62 and underscores only:
 * the whole key is one word to a double click, a shell and a URL. Pure: no I/O, no clock.
 */

const KEY_PREFIX = "pk_";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const SECRET_LENGTH = 43; // 43 * log2(62) = 256.03 bits
const KEY = /^pk_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([0-9A-Za-z]{43})$/;
// RFC 6750 2.1: the scheme is case-insensitive; one or more spaces, then the credentials.
const BEARER = /^bearer +(\S+) *$/i;

/** A new secret: each character drawn uniformly from the 62 (bytes of 248 or more are redrawn). */
export function newSecret(): string {
  let secret = "";
  while (secret.length < SECRET_LENGTH) {
    for (const byte of randomBytes(64)) {
      if (byte < 248 && secret.length < SECRET_LENGTH) secret += ALPHABET[byte % 62];
    }
  }
  return secret;
}

export const formatKey = (id: string, secret: string) => `${KEY_PREFIX}${id}_${secret}`;

/** The id and secret of a key; undefined when the text is not one this service makes. */
export function parseKey(text: string): { id: string; secret: string } | undefined {
  const match = KEY.exec(text);
  return match ? { id: match[1] as string, secret: match[2] as string } : undefined;
}

/** The credentials of an `Authorization: Bearer <credentials>` header; undefined for any other. */
export function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  return BEARER.exec(header)?.[1];
}

/** What is stored of a secret: SHA-256 is enough for 256 random bits, and costs about a microsecond. */
export const hashSecret = (secret: string): Buffer => createHash("sha256").update(secret).digest();

/** The cache's key for a presented key: its SHA-256, so the cache never holds a usable secret. */
export const tokenDigest = (token: string): string => createHash("sha256").update(token).digest("base64url");

/** Two SHA-256 digests compared in constant time (no early exit on the first differing byte). */
export const sameDigest = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

/**
 * What an unknown id's secret is compared with: a digest no secret has in practice, so an unknown
 * id costs the same hash and comparison as a wrong secret.
 */
export const DUMMY_DIGEST = hashSecret(`${KEY_PREFIX}no key has this secret`);
