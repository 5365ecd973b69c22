import type { CURRENCIES } from "../db/schema";

export type PayRequest = {
  /**
   * The payment's idempotency key at the provider (the payout id, not the client's Idempotency-Key):
   * a repeated call with the same key returns the first outcome, never pays twice.
   */
  paymentKey: string;
  payoutId: string;
  amount: string;
  currency: (typeof CURRENCIES)[number];
  recipientDetails: string;
};

export type Payment = { reference: string };

/** The gateway could not say yes or no (outage, timeout): worth another attempt later. */
export class TemporaryGatewayError extends Error {}

/** The port to whoever moves the money. */
export type PayoutGateway = {
  /** Pays, or throws TemporaryGatewayError. `signal` ends a call that ran out of time. */
  pay(request: PayRequest, signal: AbortSignal): Promise<Payment>;
  /** The payment made under this key, if any: asked before a payout is given up as FAILED. */
  lookup(paymentKey: string): Promise<Payment | undefined>;
};
