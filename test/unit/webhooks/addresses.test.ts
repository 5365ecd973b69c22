// Which endpoint URLs are refused as written (no DNS here): the address rules of the webhooks.
import { expect, test } from "bun:test";
import { URL_MAX } from "../../../src/db/schema";
import { isPublicAddress, NON_PUBLIC, PLAIN_HTTP, schemeProblem, urlProblem } from "../../../src/webhooks/addresses";

test.each([
  ["93.184.216.34", true],
  ["2606:2800:220:1:248:1893:25c8:1946", true],
  ["127.0.0.1", false],
  ["10.1.2.3", false],
  ["172.16.0.1", false],
  ["192.168.1.1", false],
  ["169.254.169.254", false],
  ["0.0.0.0", false],
  ["::1", false],
  ["[::1]", false],
  ["fe80::1", false],
  ["fc00::1", false],
  ["::ffff:127.0.0.1", false],
  ["64:ff9b::a00:1", false],
  ["not an address", false],
])("%s is public: %p", (address, expected) => {
  expect(isPublicAddress(address)).toBe(expected);
});

const STRICT = { allowPrivateNetworks: false, allowHttp: false };

test("a URL is refused for its scheme, user information, length or a non-public address, unless allowed", () => {
  expect(urlProblem("https://93.184.216.34/hooks", STRICT)).toBeUndefined();
  expect(urlProblem("https://hooks.example.com/payouts", STRICT)).toBeUndefined();
  expect(urlProblem("ftp://93.184.216.34/", STRICT)).toBe("must be an absolute https URL");
  expect(urlProblem("/hooks", STRICT)).toBe("must be an absolute https URL");
  expect(urlProblem("https://user:pw@93.184.216.34/", STRICT)).toBe("must not contain user information");
  expect(urlProblem(`https://example.com/${"a".repeat(URL_MAX)}`, STRICT)).toBe(
    `must be at most ${URL_MAX} characters`,
  );
  expect(urlProblem("https://127.0.0.1:8080/hooks", STRICT)).toBe(NON_PUBLIC);
  expect(urlProblem("https://[::1]/hooks", STRICT)).toBe(NON_PUBLIC);
  expect(urlProblem("https://127.0.0.1:8080/hooks", { ...STRICT, allowPrivateNetworks: true })).toBeUndefined();
});

test("plain http is refused unless WEBHOOK_ALLOW_HTTP allows it; https always passes the scheme rule", () => {
  expect(urlProblem("http://hooks.example.com/payouts", STRICT)).toBe(PLAIN_HTTP);
  expect(urlProblem("HTTP://hooks.example.com/payouts", STRICT)).toBe(PLAIN_HTTP);
  expect(urlProblem("http://hooks.example.com/payouts", { ...STRICT, allowHttp: true })).toBeUndefined();
  // Allowing http does not allow private addresses: the two settings are apart.
  expect(urlProblem("http://127.0.0.1/hooks", { ...STRICT, allowHttp: true })).toBe(NON_PUBLIC);
  expect(schemeProblem(new URL("https://hooks.example.com/"), false)).toBeUndefined();
  expect(schemeProblem(new URL("http://hooks.example.com/"), false)).toBe(PLAIN_HTTP);
  expect(schemeProblem(new URL("http://hooks.example.com/"), true)).toBeUndefined();
});
