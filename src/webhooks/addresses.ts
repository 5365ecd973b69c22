import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { URL_MAX } from "../db/schema";

/*
 * Where a webhook may be sent: only to public addresses, unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is
 * set. An endpoint URL is the client's choice, so without this rule the service would POST, from
 * inside the network, to whatever the client names: a database's admin port, a cloud metadata
 * service (169.254.169.254), the service itself (SSRF).
 */

const v4 = (address: string): number | undefined => {
  const parts = address.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
};

/** 128 bits; a zone id (fe80::1%eth0) is ignored, a trailing dotted quad read as the last 32 bits. */
function v6(address: string): bigint | undefined {
  let text = address.split("%")[0] as string;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    const low = v4(text.slice(lastColon + 1));
    if (low === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(low >>> 16).toString(16)}:${(low & 0xffff).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined) => (half ? half.split(":") : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return all.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

type Range = [network: bigint, prefix: number, bits: 32 | 128];
const range = (cidr: string): Range => {
  const [address, prefix] = cidr.split("/") as [string, string];
  const n = v4(address);
  return n !== undefined ? [BigInt(n), Number(prefix), 32] : [v6(address) as bigint, Number(prefix), 128];
};
const within = (address: bigint, [network, prefix, bits]: Range) =>
  address >> BigInt(bits - prefix) === network >> BigInt(bits - prefix);

// Not on the public internet: "this network" and unspecified, private (RFC 1918), shared (CGNAT),
// loopback, link-local (cloud metadata), IETF protocol assignments, documentation, benchmarking,
// multicast, reserved and broadcast.
const V4_NON_PUBLIC = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/3",
].map(range);
// Unspecified, loopback, discard, documentation, unique-local, link-local, site-local, multicast.
const V6_NON_PUBLIC = [
  "::/128",
  "::1/128",
  "100::/64",
  "2001:db8::/32",
  "fc00::/7",
  "fe80::/10",
  "fec0::/10",
  "ff00::/8",
].map(range);
// IPv6 forms that carry an IPv4 address, which is judged instead: a NAT64 gateway, a 6to4 relay or
// the host's own stack sends such an address on to the IPv4 one, so `::ffff:127.0.0.1` reaches
// 127.0.0.1. A form may list several places the IPv4 address can sit; the address is public only
// when the IPv4 address in every one of them is.
const low32 = (a: bigint) => a & 0xffffffffn;
// RFC 6052's layout for a NAT64 prefix of 64 bits: the "u" octet (bits 64 to 71), then the IPv4
// address (72 to 103), then a zero suffix. Within the local-use prefix 64:ff9b:1::/48 the prefix's
// length is the operator's choice (RFC 8215): a /96 puts the IPv4 address last, a /64 here, and a
// /48 or /56 leaves the last 32 bits zero, 0.0.0.0 when read as the /96 layout: refused either way.
const nat64At64 = (a: bigint) => ((a & 0xffffffn) === 0n ? (a >> 24n) & 0xffffffffn : undefined);
const V4_IN_V6: [Range, ((a: bigint) => bigint | undefined)[]][] = [
  // IPv4-mapped (::ffff:a.b.c.d, also written ::ffff:7f00:1) and IPv4-translated (::ffff:0:a.b.c.d, RFC 2765).
  [range("::ffff:0:0/96"), [low32]],
  [range("::ffff:0:0:0/96"), [low32]],
  // IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks); :: and ::1 fall here too.
  [range("::/96"), [low32]],
  // NAT64: the well-known prefix (RFC 6052) and the local-use one (RFC 8215).
  [range("64:ff9b::/96"), [low32]],
  [range("64:ff9b:1::/48"), [low32, nat64At64]],
  // 6to4: the relay's IPv4 address in bits 16 to 48.
  [range("2002::/16"), [(a) => (a >> 80n) & 0xffffffffn]],
];

/** Whether an IP address (v4 or v6, as written in a URL or returned by DNS) is a public one. */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "");
  const four = v4(bare);
  if (four !== undefined) return !V4_NON_PUBLIC.some((r) => within(BigInt(four), r));
  const six = v6(bare);
  if (six === undefined) return false;
  const embedded = V4_IN_V6.find(([r]) => within(six, r));
  if (embedded) {
    const candidates = embedded[1].map((at) => at(six)).filter((n) => n !== undefined);
    return candidates.every((n) => !V4_NON_PUBLIC.some((r) => within(n, r)));
  }
  return !V6_NON_PUBLIC.some((r) => within(six, r));
}

const LOOKUP_TIMEOUT_MS = 5000;
export const NON_PUBLIC = "must not point to a loopback, private, link-local or other non-public address";

export const PLAIN_HTTP =
  "must be an https URL: over plain http the payout data, recipient details included, would travel in clear";

/** The rules an endpoint URL is held to: WEBHOOK_ALLOW_PRIVATE_NETWORKS and WEBHOOK_ALLOW_HTTP. */
type UrlRules = { allowPrivateNetworks: boolean; allowHttp: boolean };

/**
 * Why a URL's scheme may not be sent to, or undefined: https always, http only where allowed (a
 * development setting). Checked when an endpoint is saved and again before each attempt, for an
 * endpoint stored while http was allowed.
 */
export const schemeProblem = (url: URL, allowHttp: boolean): string | undefined =>
  url.protocol === "https:" || (url.protocol === "http:" && allowHttp) ? undefined : PLAIN_HTTP;

/** What is wrong with an endpoint URL as written, or undefined. No DNS here: see refusedAddress. */
export function urlProblem(raw: string, { allowPrivateNetworks, allowHttp }: UrlRules): string | undefined {
  if (raw.length > URL_MAX) return `must be at most ${URL_MAX} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute https URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an absolute https URL";
  const scheme = schemeProblem(url, allowHttp);
  if (scheme) return scheme;
  if (url.username !== "" || url.password !== "") return "must not contain user information";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!allowPrivateNetworks && isIP(host) !== 0 && !isPublicAddress(host)) return NON_PUBLIC;
  return undefined;
}

/**
 * Why this URL's host may not be sent to, after DNS resolution, or undefined when every address
 * it resolves to is public. Checked when an endpoint is saved and again before each attempt, as
 * the name may resolve elsewhere since.
 */
export async function refusedAddress(url: URL, allowPrivateNetworks: boolean): Promise<string | undefined> {
  if (allowPrivateNetworks) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) !== 0) return isPublicAddress(host) ? undefined : NON_PUBLIC;
  let timer: Timer | undefined;
  try {
    const addresses = await Promise.race([
      lookup(host, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), LOOKUP_TIMEOUT_MS);
      }),
    ]);
    if (addresses.length === 0) return "its host name does not resolve";
    return addresses.every((a) => isPublicAddress(a.address))
      ? undefined
      : `${NON_PUBLIC} (its host name resolves to one)`;
  } catch {
    return "its host name does not resolve";
  } finally {
    clearTimeout(timer);
  }
}
