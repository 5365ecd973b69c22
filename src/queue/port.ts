/**
 * The queue port: a wake-up call that carries a payout id. PostgreSQL stays the source of truth,
 * so a message that is lost, late or duplicated never changes what happens to the money.
 */
export type PayoutMessage = {
  id: string;
  /** The payout may already be PROCESSING (a retry, or recovery after a crash): take it over. */
  resume?: boolean;
};

export type Publisher = {
  /** Resolves once the broker has confirmed every message; rejects if it has not. */
  publish(messages: PayoutMessage[]): Promise<void>;
  /** Whether publishing can be tried now (the connection is up). */
  readonly connected: boolean;
  close(): Promise<void>;
};

/** A message as the consumer hands it to its handler. */
export type QueueMessage = PayoutMessage & {
  /** The broker delivered this message before without an ack: its holder died. */
  redelivered: boolean;
};

/** What the handler decided: done (ack), or try again after a delay (retry queue, then ack). */
/** A message whose handler threw, and whose retry could not be sent either, is handed back after this. */
export const HAND_BACK_AFTER_MS = 1000;

export type HandlerResult = { retryAfterMs?: number };

export type Consumer = {
  /** Starts delivering, at most `concurrency` messages in flight. */
  start(handler: (message: QueueMessage) => Promise<HandlerResult>): Promise<void>;
  /** Stops taking new messages, waits for those in flight (each is acked or handed back), closes. */
  close(): Promise<void>;
  readonly inFlight: number;
};
