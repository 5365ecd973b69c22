import { parseJsonExact } from "../lib/json-number";
import { HttpProblem, problem } from "./problem";

const BODY_LIMIT_BYTES = 64 * 1024;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;

const utf8 = new TextDecoder("utf-8", { fatal: true });

const tooLarge = () =>
  new HttpProblem(problem("payload_too_large", `the body must be at most ${BODY_LIMIT_BYTES} bytes`));

/**
 * Reads a JSON body: refuses a body that is not JSON (415) or too large (413) before parsing it,
 * and never buffers more than the limit, whatever Content-Length claims.
 */
export async function readJsonBody(request: Request): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!JSON_TYPE.test(type)) {
    throw new HttpProblem(problem("unsupported_media_type", "the body must be application/json"));
  }
  // JSON is UTF-8 (RFC 8259): a body declared in another charset would be read as something else.
  const charset = CHARSET.exec(type);
  if (charset && (charset[1] ?? charset[2] ?? "").toLowerCase() !== "utf-8") {
    throw new HttpProblem(problem("unsupported_media_type", "the body must be UTF-8 (charset=utf-8)"));
  }
  const length = request.headers.get("content-length");
  if (Number(length) > BODY_LIMIT_BYTES) throw tooLarge();
  // With a Content-Length within the limit the server reads exactly that many bytes: one buffer.
  // Without one (chunked), the stream is counted as it arrives and cut at the limit.
  const bytes = length !== null ? new Uint8Array(await request.arrayBuffer()) : await readLimited(request.body);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new HttpProblem(problem("invalid_json", "the body is not valid UTF-8"));
  }
  let body: unknown;
  try {
    body = parseJsonExact(text);
  } catch (error) {
    throw new HttpProblem(problem("invalid_json", `the body is not valid JSON: ${(error as Error).message}`));
  }
  // JSON.parse keeps the last of two equal keys: {"amount":"1.00","amount":"9999.00"} must not
  // pass for either amount.
  const repeated = repeatedKey(text);
  if (repeated !== undefined) {
    throw new HttpProblem(
      problem("invalid_json", `the body is ambiguous: the key ${JSON.stringify(repeated)} appears twice`),
    );
  }
  return body;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/** Whether the quote at `at` is escaped: preceded by an odd number of backslashes. */
function escaped(text: string, at: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
  return backslashes % 2 === 1;
}

/**
 * The first key that appears twice in one object of a JSON text, which JSON.parse has accepted.
 * Keys are compared decoded, so "a" and "\u0061" are the same key.
 */
function repeatedKey(text: string): string | undefined {
  const open: (Set<string> | undefined)[] = []; // one per open bracket: an object's keys, or undefined for an array
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1);
      while (escaped(text, end)) end = text.indexOf('"', end + 1);
      const keys = open.at(-1);
      if (keyNext && keys) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      keyNext = false;
      i = end;
    } else if (c === OPEN_OBJECT) {
      open.push(new Set());
      keyNext = true;
    } else if (c === OPEN_ARRAY) {
      open.push(undefined);
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop();
      keyNext = false;
    } else if (c === COMMA) {
      keyNext = open.at(-1) !== undefined;
    }
  }
  return undefined;
}

async function readLimited(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (body) {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > BODY_LIMIT_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}
