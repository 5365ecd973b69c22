import { Kind, type SchemaOptions, Type } from "@sinclair/typebox";
import { JsonNumber } from "../lib/json-number";
import { register } from "../lib/kinds";

// The bounds of a payout's amount (the contract's), in the decimal form clients write.
export const AMOUNT_MIN = "0.01";
export const AMOUNT_MAX = "9999999999.99";

const DECIMAL = /^(\d+)(?:\.(\d{1,2}))?$/;
const NEGATIVE = /^-\d+(?:\.\d+)?$/;

const toCents = (decimal: string): bigint => {
  const [int = "0", frac = ""] = decimal.split(".");
  return BigInt(int) * 100n + BigInt(frac.padEnd(2, "0"));
};
const MIN_CENTS = toCents(AMOUNT_MIN);
const MAX_CENTS = toCents(AMOUNT_MAX);

type AmountResult = { ok: true; value: string } | { ok: false; message: string };

/**
 * Money in: a JSON string or number written as a plain decimal with at most two fraction digits,
 * within the allowed range. The result is the canonical two-digit string that is stored. No float
 * is ever made: the digits are compared as integers of cents.
 */
export function parseAmount(raw: unknown): AmountResult {
  let text: string;
  if (typeof raw === "string") text = raw;
  else if (raw instanceof JsonNumber) text = raw.source;
  else return { ok: false, message: "must be a decimal string or number" };

  const match = DECIMAL.exec(text);
  if (!match) {
    if (NEGATIVE.test(text)) return { ok: false, message: `must be at least ${AMOUNT_MIN}` };
    return { ok: false, message: "must be a decimal number with at most 2 fraction digits, like 1500.00" };
  }
  const cents = toCents(text);
  if (cents < MIN_CENTS) return { ok: false, message: `must be at least ${AMOUNT_MIN}` };
  if (cents > MAX_CENTS) return { ok: false, message: `must be at most ${AMOUNT_MAX}` };
  const int = (cents / 100n).toString();
  const frac = (cents % 100n).toString().padStart(2, "0");
  return { ok: true, value: `${int}.${frac}` };
}

// The Amount kind of the request schemas (src/lib/kinds.ts registers the other kinds).
register("Amount", (_, value) => {
  const result = parseAmount(value);
  return result.ok ? undefined : result.message;
});

/**
 * Money in: a JSON string or number, decoded to the canonical two-digit string that is stored.
 * The document states the string form exactly, and the number form's range.
 */
export const Amount = (bounds: { min: string; max: string }, options: SchemaOptions = {}) =>
  Type.Transform(
    Type.Unsafe<string | JsonNumber>({
      ...options,
      [Kind]: "Amount",
      anyOf: [
        // At most 10 integer digits once leading zeros are dropped, at most 2 fraction digits, not zero.
        { type: "string", pattern: "^(?!0*(?:\\.0{1,2})?$)0*\\d{1,10}(?:\\.\\d{1,2})?$" },
        { type: "number", minimum: Number(bounds.min), maximum: Number(bounds.max) },
      ],
    }),
  )
    .Decode((value) => (parseAmount(value) as { value: string }).value)
    .Encode((value): string | JsonNumber => value);
