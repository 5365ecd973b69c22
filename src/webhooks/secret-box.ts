import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { and, eq, lte, notLike, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { webhookEndpoints } from "../db/schema";

/*
 * Webhook signing secrets at rest (docs: access-control). The service must read them to sign, so
 * they cannot be hashed; they are encrypted with AES-256-GCM under a key that lives only in the
 * environment (WEBHOOK_SECRET_KEYS), so a database dump or backup alone cannot forge a webhook.
 *
 * Stored form: `v1:<key id>:<iv, base64>:<ciphertext and tag, base64>`. The key id says which key
 * opens it, so keys can be rotated: the first key seals, every listed key opens. The endpoint's id
 * is the additional authenticated data: a sealed secret copied onto another endpoint's row does
 * not open there.
 */

/** The same shape as the configuration's: an id stored with each secret, and 32 bytes. */
type SealingKey = { id: string; key: Buffer };

const VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Why a stored secret does not open; it names the key id, never any key or secret. */
export class UnreadableSecret extends Error {}

export function secretBox(keys: readonly SealingKey[]) {
  const [current] = keys;
  if (!current) throw new Error("secretBox needs at least one key");
  const byId = new Map(keys.map((k) => [k.id, k.key]));

  /** Seals a secret (`whsec_...`) for the endpoint `endpointId`'s row under the first key. */
  const seal = (secret: string, endpointId: string): string => {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", current.key, iv);
    cipher.setAAD(Buffer.from(endpointId));
    const sealed = Buffer.concat([cipher.update(secret, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}:${current.id}:${iv.toString("base64")}:${sealed.toString("base64")}`;
  };

  /** The key id a stored value was sealed with; undefined for one not sealed (a secret in clear). */
  const keyIdOf = (stored: string): string | undefined => {
    const parts = stored.split(":");
    return parts.length === 4 && parts[0] === VERSION ? parts[1] : undefined;
  };

  /** Opens what seal() made for the same endpoint; throws UnreadableSecret otherwise. */
  const open = (stored: string, endpointId: string): string => {
    const [version, keyId, iv, sealed] = stored.split(":");
    if (version !== VERSION || keyId === undefined || iv === undefined || sealed === undefined) {
      throw new UnreadableSecret("the stored signing secret is not sealed");
    }
    const key = byId.get(keyId);
    if (!key)
      throw new UnreadableSecret(`the signing secret is sealed with key id "${keyId}", not in WEBHOOK_SECRET_KEYS`);
    const bytes = Buffer.from(sealed, "base64");
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64"));
      decipher.setAAD(Buffer.from(endpointId));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      throw new UnreadableSecret(`the signing secret does not open with key id "${keyId}"`);
    }
  };

  return {
    seal,
    open,
    keyIdOf,
    /** The id of the key that seals. */
    currentKeyId: current.id,
    /** Whether a key of this id is listed (and so opens what it sealed). */
    knows: (keyId: string) => byId.has(keyId),
  };
}

export type SecretBox = ReturnType<typeof secretBox>;

const IN_CLEAR = "whsec_";

/** What sealStoredSecrets did, by count; `unreadable` by key id, for keys no longer listed. */
type SealingReport = { sealed: number; resealed: number; unreadable: Record<string, number> };

/**
 * Brings every stored signing secret under the current key: one in clear (stored before secrets
 * were encrypted) is sealed, one sealed with another listed key (a key rotation) is sealed again.
 * An expired previous secret is dropped instead: it signs nothing any more.
 *
 * Safe with any number of processes doing it at once, and with rotations meanwhile: each UPDATE
 * writes only while the column still holds the value this pass read, so nothing newer is ever
 * overwritten, and a value another process sealed first is left alone.
 */
export async function sealStoredSecrets({ db, box }: { db: Db; box: SecretBox }): Promise<SealingReport> {
  await db
    .update(webhookEndpoints)
    .set({ previousSecret: null, previousSecretExpiresAt: null })
    .where(lte(webhookEndpoints.previousSecretExpiresAt, sql`now()`));
  const current = `${VERSION}:${box.currentKeyId}:%`;
  const rows = await db
    .select({ id: webhookEndpoints.id, secret: webhookEndpoints.secret, previous: webhookEndpoints.previousSecret })
    .from(webhookEndpoints)
    .where(or(notLike(webhookEndpoints.secret, current), notLike(webhookEndpoints.previousSecret, current)));
  const report: SealingReport = { sealed: 0, resealed: 0, unreadable: {} };
  for (const row of rows) {
    for (const column of ["secret", "previousSecret"] as const) {
      const stored = column === "secret" ? row.secret : row.previous;
      if (stored === null || box.keyIdOf(stored) === box.currentKeyId) continue;
      const keyId = box.keyIdOf(stored);
      let secret: string;
      if (stored.startsWith(IN_CLEAR)) secret = stored;
      else if (keyId !== undefined && box.knows(keyId)) secret = box.open(stored, row.id);
      else {
        const id = keyId ?? "(not sealed)";
        report.unreadable[id] = (report.unreadable[id] ?? 0) + 1;
        continue;
      }
      const [written] = await db
        .update(webhookEndpoints)
        .set({ [column]: box.seal(secret, row.id) })
        .where(and(eq(webhookEndpoints.id, row.id), eq(webhookEndpoints[column], stored)))
        .returning({ id: webhookEndpoints.id });
      if (written) report[keyId === undefined ? "sealed" : "resealed"] += 1;
    }
  }
  return report;
}
