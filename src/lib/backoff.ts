/** Delay before attempt `attempt + 1`: base, 2 x base, 4 x base, ..., at most `maxMs`. */
export const retryDelayMs = (baseMs: number, attempt: number, maxMs: number) =>
  Math.min(baseMs * 2 ** (attempt - 1), maxMs);

/** The delay closest to `wanted` among those that exist (a broker's retry queues, say). */
export const nearestDelay = (delays: number[], wanted: number): number =>
  delays.reduce((best, d) => (Math.abs(d - wanted) < Math.abs(best - wanted) ? d : best), delays[0] ?? wanted);
