import { describe, expect, it } from 'vitest';
import { badgeText, notificationFor, parseShellSettings, trayTooltip } from './notifications';

describe('notifications', () => {
  it('say only the fixed phrase, never message content, and stay quiet while the window has focus', () => {
    const settings = parseShellSettings(null);
    expect(notificationFor(settings, { windowFocused: false })).toEqual({ title: 'Clinic Inbox', body: 'New WhatsApp message' });
    expect(notificationFor(settings, { windowFocused: true })).toBeNull();
  });

  it('use the clinic’s own wording, or none when turned off', () => {
    const custom = parseShellSettings(JSON.stringify({ notifications: { body: 'Nieuw WhatsApp-bericht' } }));
    expect(notificationFor(custom, { windowFocused: false })?.body).toBe('Nieuw WhatsApp-bericht');
    const off = parseShellSettings(JSON.stringify({ notifications: { enabled: false } }));
    expect(notificationFor(off, { windowFocused: false })).toBeNull();
  });

  it('fall back to the safe defaults for unreadable or invalid settings', () => {
    for (const text of ['{', '[]', JSON.stringify({ notifications: { body: '' } }), JSON.stringify({ notifications: { body: 'x'.repeat(500) } })])
      expect(notificationFor(parseShellSettings(text), { windowFocused: false })?.body).toBe('New WhatsApp message');
  });
});

describe('tray and badge', () => {
  it('show counts only', () => {
    expect(trayTooltip(0)).toBe('Clinic Inbox');
    expect(trayTooltip(12)).toBe('Clinic Inbox — 12 unread');
    expect(trayTooltip(5000)).toBe('Clinic Inbox — 999+ unread');
    expect(badgeText(0)).toBe('');
    expect(badgeText(7)).toBe('7');
    expect(badgeText(150)).toBe('99+');
  });
});
