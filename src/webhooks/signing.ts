import { createHmac, randomBytes } from "node:crypto";

/*
 * Standard Webhooks (standardwebhooks.com): the secret is "whsec_" + base64 of the key; each
 * signature is "v1," + base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" under the
 * key. A receiver using the standardwebhooks or svix libraries verifies it unchanged.
 */

const PREFIX = "whsec_";

/** A new secret: 32 random bytes, the key size of HMAC-SHA256. */
export const newSecret = () => `${PREFIX}${randomBytes(32).toString("base64")}`;

const sign = (secret: string, content: string) =>
  `v1,${createHmac("sha256", Buffer.from(secret.slice(PREFIX.length), "base64"))
    .update(content)
    .digest("base64")}`;

/**
 * The webhook-signature header: one signature per secret, space-separated (the current one, and
 * the previous one during the overlap after a rotation).
 */
export const signatureHeader = (secrets: string[], id: string, timestamp: number, body: string) =>
  secrets.map((secret) => sign(secret, `${id}.${timestamp}.${body}`)).join(" ");
