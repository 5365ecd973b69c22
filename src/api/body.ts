import { AppError } from "../errors";
import { parseJsonExact } from "../payouts/amount";

export const BODY_LIMIT_BYTES = 64 * 1024;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

const utf8 = new TextDecoder("utf-8", { fatal: true });

const tooLarge = () =>
  new AppError(413, "payload_too_large", "Payload too large", `the body must be at most ${BODY_LIMIT_BYTES} bytes`);

/**
 * Reads a JSON body: refuses a body that is not JSON (415) or too large (413) before parsing it,
 * and never buffers more than the limit, whatever Content-Length claims.
 */
export async function readJsonBody(request: Request): Promise<unknown> {
  if (!JSON_TYPE.test(request.headers.get("content-type") ?? "")) {
    throw new AppError(415, "unsupported_media_type", "Unsupported media type", "the body must be application/json");
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
    throw new AppError(400, "invalid_json", "Invalid JSON", "the body is not valid UTF-8");
  }
  try {
    return parseJsonExact(text);
  } catch (error) {
    throw new AppError(400, "invalid_json", "Invalid JSON", `the body is not valid JSON: ${(error as Error).message}`);
  }
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
