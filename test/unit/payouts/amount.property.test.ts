// parseAmount, property by property: money in range with at most two fraction digits round-trips
// exactly; everything else is refused. Values are compared as integer cents (BigInt), never floats.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { JsonNumber, parseJsonExact } from "../../../src/lib/json-number";
import { parseAmount } from "../../../src/payouts/amount";

const MIN_CENTS = 1n;
const MAX_CENTS = 999_999_999_999n;

/** The value a decimal string names, in cents; written independently of the code under test. */
function cents(decimal: string): bigint {
  const [whole = "", fraction = ""] = decimal.split(".");
  return BigInt(whole) * 100n + BigInt(fraction.padEnd(2, "0"));
}

/** A plain decimal from min to max cents with at most two fraction digits, leading zeros or not. */
const decimalText = (min: bigint, max: bigint) =>
  fc
    .record({
      whole: fc.bigInt({ min: min / 100n, max: max / 100n }),
      fraction: fc.string({ unit: fc.constantFrom(..."0123456789"), maxLength: 2 }),
      leadingZeros: fc.nat({ max: 3 }),
    })
    .map(({ whole, fraction, leadingZeros }) => `${"0".repeat(leadingZeros)}${whole}${fraction ? `.${fraction}` : ""}`)
    .filter((text) => cents(text) >= min && cents(text) <= max);

const refused = (raw: unknown) => expect(parseAmount(raw).ok).toBe(false);

describe("amounts that are accepted", () => {
  test("every decimal string in range with at most two fraction digits round-trips exactly", () => {
    fc.assert(
      fc.property(decimalText(MIN_CENTS, MAX_CENTS), (text) => {
        const result = parseAmount(text);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        expect(result.value).toMatch(/^(0|[1-9]\d*)\.\d{2}$/);
        expect(cents(result.value)).toBe(cents(text));
      }),
      { numRuns: 2000 },
    );
  });

  test("a JSON number is judged by the digits written, exactly as the same digits in a string", () => {
    fc.assert(
      fc.property(decimalText(MIN_CENTS, MAX_CENTS), (text) => {
        const json = parseJsonExact(`{"amount":${text.replace(/^0+(?=\d)/, "")}}`) as { amount: unknown };
        expect(json.amount).toBeInstanceOf(JsonNumber);
        expect(parseAmount(json.amount)).toEqual(parseAmount(text));
      }),
      { numRuns: 1000 },
    );
  });

  test("the bounds themselves are accepted", () => {
    expect(parseAmount("0.01")).toEqual({ ok: true, value: "0.01" });
    expect(parseAmount("9999999999.99")).toEqual({ ok: true, value: "9999999999.99" });
    expect(parseAmount(new JsonNumber("9999999999.99"))).toEqual({ ok: true, value: "9999999999.99" });
  });
});

describe("amounts that are refused", () => {
  test("every decimal above the maximum is refused", () => {
    fc.assert(
      fc.property(decimalText(MAX_CENTS + 1n, 10n ** 30n), (text) => {
        expect(parseAmount(text)).toEqual({ ok: false, message: "must be at most 9999999999.99" });
        expect(parseAmount(new JsonNumber(text.replace(/^0+(?=\d)/, "")))).toEqual({
          ok: false,
          message: "must be at most 9999999999.99",
        });
      }),
    );
  });

  test("zero, however written, is refused", () => {
    fc.assert(
      fc.property(decimalText(0n, 0n), (text) => {
        expect(parseAmount(text)).toEqual({ ok: false, message: "must be at least 0.01" });
      }),
    );
  });

  test("every negative amount is refused", () => {
    fc.assert(
      fc.property(decimalText(0n, MAX_CENTS * 10n), (text) => refused(`-${text}`)),
      { numRuns: 500 },
    );
  });

  test("three or more fraction digits are refused, even when they are zeros", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_CENTS / 100n }),
        fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 3, maxLength: 25 }),
        (whole, fraction) => {
          refused(`${whole}.${fraction}`);
          refused(new JsonNumber(`${whole}.${fraction}`));
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("every string that is not a plain decimal is refused", () => {
    const plainDecimal = /^\d+(\.\d{1,2})?$/;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: "grapheme" }),
          fc.string({ unit: fc.constantFrom(..."0123456789.,-+eE _x \t"), maxLength: 12 }),
        ),
        (text) => {
          fc.pre(!plainDecimal.test(text));
          refused(text);
          refused(new JsonNumber(text));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("decimals wrapped in signs, spaces, exponents or other digits are refused", () => {
    fc.assert(
      fc.property(
        decimalText(MIN_CENTS, MAX_CENTS),
        fc.constantFrom(
          (t: string) => `+${t}`,
          (t: string) => ` ${t}`,
          (t: string) => `${t} `,
          (t: string) => `${t}\n`,
          (t: string) => `${t}e0`,
          (t: string) => `${t}E+2`,
          (t: string) => `${t}.`,
          (t: string) => t.replace(".", ","),
          (t: string) => `0x${t}`,
          (t: string) => t.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d))),
          (t: string) => t.replace(/\d/g, (d) => String.fromCharCode(0x0660 + Number(d))),
        ),
        (text, wrap) => {
          const wrapped = wrap(text);
          fc.pre(wrapped !== text);
          refused(wrapped);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("values that are neither a string nor a JSON number are refused", () => {
    fc.assert(
      fc.property(
        fc.anything().filter((v) => typeof v !== "string"),
        (value) => {
          expect(parseAmount(value)).toEqual({ ok: false, message: "must be a decimal string or number" });
        },
      ),
    );
  });

  test("a float is refused: only the digits a client wrote count", () => {
    expect(parseAmount(10.5)).toEqual({ ok: false, message: "must be a decimal string or number" });
  });
});
