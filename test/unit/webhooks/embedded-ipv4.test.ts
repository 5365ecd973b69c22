// The SSRF guard on IPv6 forms that carry an IPv4 address: each is judged by the IPv4 address it
// reaches, in every notation a URL or a DNS answer may use. A private target is refused, a public
// one allowed.
import { describe, expect, test } from "bun:test";
import { isPublicAddress, urlProblem } from "../../../src/webhooks/addresses";

const STRICT = { allowPrivateNetworks: false, allowHttp: false };
const PRIVATE = { allowPrivateNetworks: true, allowHttp: false };

const forms: [form: string, refused: string[], allowed: string[]][] = [
  [
    "IPv4-mapped ::ffff:0:0/96",
    [
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::FFFF:7F00:0001",
      "0:0:0:0:0:ffff:7f00:1",
      "0000:0000:0000:0000:0000:ffff:10.0.0.1",
      "::ffff:a9fe:a9fe",
      "::ffff:c0a8:101",
    ],
    ["::ffff:8.8.8.8", "::ffff:808:808", "0:0:0:0:0:ffff:5db8:d822"],
  ],
  [
    "IPv4-translated ::ffff:0:0:0/96",
    ["::ffff:0:127.0.0.1", "::ffff:0:7f00:1", "0:0:0:0:ffff:0:a00:1", "::ffff:0:169.254.169.254", "::ffff:0:0:0"],
    ["::ffff:0:8.8.8.8", "::ffff:0:808:808"],
  ],
  [
    "IPv4-compatible ::/96",
    ["::127.0.0.1", "::7f00:1", "::10.0.0.1", "::a00:1", "::192.168.1.1", "::1", "::"],
    ["::8.8.8.8", "::808:808"],
  ],
  [
    "6to4 2002::/16",
    ["2002:7f00:1::", "2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:101:1::1", "2002:a9fe:a9fe::"],
    ["2002:808:808::1", "2002:5db8:d822::"],
  ],
  [
    "NAT64 well-known 64:ff9b::/96",
    ["64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::10.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::"],
    ["64:ff9b::8.8.8.8", "64:ff9b::808:808"],
  ],
  [
    "NAT64 local-use 64:ff9b:1::/48",
    [
      // a /96 prefix within it: the IPv4 address last
      "64:ff9b:1::127.0.0.1",
      "64:ff9b:1:2:3:4:a00:1",
      "64:ff9b:1::c0a8:101",
      // a /64 prefix: 10.0.0.1 in bits 72 to 103, after the u octet (its last 32 bits read 1.0.0.0)
      "64:ff9b:1:0:a:0:100:0",
      // a /48 or /56 prefix: the last 32 bits are zero
      "64:ff9b:1:a00:0:100::",
    ],
    ["64:ff9b:1::8.8.8.8", "64:ff9b:1:2:3:4:808:808"],
  ],
];

describe.each(forms)("%s", (_, refused, allowed) => {
  test.each(refused)("%s is not public, nor in a URL", (address) => {
    expect(isPublicAddress(address)).toBe(false);
    expect(isPublicAddress(`[${address}]`)).toBe(false);
    expect(urlProblem(`https://[${address}]/hook`, STRICT)).toMatch(/^must not point to a loopback/);
    expect(urlProblem(`https://[${address}]/hook`, PRIVATE)).toBeUndefined();
  });
  test.each(allowed)("%s embeds a public IPv4 address: allowed", (address) => {
    expect(isPublicAddress(address)).toBe(true);
    expect(urlProblem(`https://[${address}]:8443/hook`, STRICT)).toBeUndefined();
  });
});

test("the IPv6 ranges around them are still judged as IPv6", () => {
  expect(isPublicAddress("2606:4700::1111")).toBe(true);
  expect(isPublicAddress("64:ff9b:2::a00:1")).toBe(true);
  expect(isPublicAddress("fe80::ffff:7f00:1")).toBe(false);
  expect(isPublicAddress("fd00::ffff:7f00:1")).toBe(false);
});
