import { describe, expect, it } from 'vitest';
import { CUSTOMER_SERVICE_WINDOW_MS, customerServiceWindow, isWindowOpen } from './window';

const t0 = Date.UTC(2026, 10, 22, 9, 0, 0);

describe('customer-service window', () => {
  it('is closed when the patient never wrote', () => {
    expect(customerServiceWindow(null, t0)).toEqual({ open: false, closesAt: null, msLeft: 0 });
  });

  it('is open right after an inbound message and says when it closes', () => {
    const w = customerServiceWindow(t0, t0 + 60_000);
    expect(w.open).toBe(true);
    expect(w.closesAt).toBe(t0 + CUSTOMER_SERVICE_WINDOW_MS);
    expect(w.msLeft).toBe(CUSTOMER_SERVICE_WINDOW_MS - 60_000);
  });

  it('closes exactly 24 hours after the last inbound message', () => {
    expect(isWindowOpen(t0, t0 + CUSTOMER_SERVICE_WINDOW_MS - 1)).toBe(true);
    expect(isWindowOpen(t0, t0 + CUSTOMER_SERVICE_WINDOW_MS)).toBe(false);
    expect(customerServiceWindow(t0, t0 + 25 * 3600_000)).toEqual({ open: false, closesAt: null, msLeft: 0 });
  });

  it('a newer inbound message reopens it', () => {
    const later = t0 + 30 * 3600_000;
    expect(isWindowOpen(t0, later)).toBe(false);
    expect(isWindowOpen(later - 1000, later)).toBe(true);
  });
});
