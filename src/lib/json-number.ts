/**
 * A number as it was written in the JSON text. Parsing keeps the source so that `10.005` or
 * `1.0000000000000000001` are judged by what the client sent, not by the float they round to.
 */
export class JsonNumber {
  constructor(readonly source: string) {}
}

const exactNumbers = (_key: string, value: unknown, context?: { source?: string }) =>
  typeof value === "number" ? new JsonNumber(context?.source ?? String(value)) : value;

/** Whether a parsed value is a number, or an object or array that holds one (or another object). */
const mayHoldNumber = (value: unknown): boolean =>
  typeof value === "number" ||
  (typeof value === "object" &&
    value !== null &&
    Object.values(value).some((v) => typeof v === "number" || (typeof v === "object" && v !== null)));

/**
 * JSON.parse that turns every number into a JsonNumber holding its exact source text. A reviver
 * costs several times the parse itself, and most bodies hold no number (amounts come as strings):
 * it runs only on a text whose plain parse found one, or found nesting that might hide one.
 */
export function parseJsonExact(text: string): unknown {
  const value: unknown = JSON.parse(text);
  return mayHoldNumber(value) ? JSON.parse(text, exactNumbers) : value;
}
