import { NotFound } from "../errors";
import { isUuid } from "../lib/uuid";

/*
 * What every feature's routes share: the JSON answer and the id from the path.
 */

export const json = (body: unknown, status: number, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });

/** An id from the path, in the form it is stored: anything but a UUID names nothing (404). */
export function pathId(raw: string, what: string): string {
  if (!isUuid(raw)) throw new NotFound(what);
  return raw.toLowerCase();
}
