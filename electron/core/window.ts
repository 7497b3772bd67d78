import type { WindowState } from '../../shared/rpc';

/**
 * WhatsApp's customer-service window: for 24 hours after the patient's last message the clinic may
 * send free-form messages; outside it only approved templates go out (Meta refuses the rest with
 * 131047). Pure functions so the send path, the UI countdown and the tests agree on one boundary.
 */
export const CUSTOMER_SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Meta delivers no reaction to a message more than 30 days old (a `failed` webhook with 131009 instead). */
export const REACTION_MAX_AGE_MS = 30 * 86_400_000;

export interface CustomerServiceWindow extends WindowState {
  /** Milliseconds until the window closes; 0 when closed. For the UI's "closes in 3 h" hint. */
  msLeft: number;
}

/**
 * The window as of `now`, given when the patient last wrote (ms, Meta's timestamp of the newest
 * inbound message) or null if they never did. Open while `now < lastInboundAt + 24 h`; the closing
 * instant itself is already closed, matching Meta's "more than 24 hours have passed".
 */
export function customerServiceWindow(lastInboundAt: number | null, now: number): CustomerServiceWindow {
  if (lastInboundAt === null) return { open: false, closesAt: null, msLeft: 0 };
  const closesAt = lastInboundAt + CUSTOMER_SERVICE_WINDOW_MS;
  const msLeft = closesAt - now;
  if (msLeft <= 0) return { open: false, closesAt: null, msLeft: 0 };
  return { open: true, closesAt, msLeft };
}

export function isWindowOpen(lastInboundAt: number | null, now: number): boolean {
  return customerServiceWindow(lastInboundAt, now).open;
}
