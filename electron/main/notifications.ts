import { z } from 'zod';

/**
 * The shell's own settings (not patient data), read from `settings.json` in the app's user data
 * folder. An OS notification is seen by anyone near the screen and may be mirrored to a phone,
 * so its text is a fixed phrase the clinic chooses, never anything from the message.
 */
export const ShellSettingsSchema = z.object({
  notifications: z
    .object({
      enabled: z.boolean().default(true),
      title: z.string().trim().min(1).max(60).default('Clinic Inbox'),
      body: z.string().trim().min(1).max(120).default('New WhatsApp message'),
    })
    .default({ enabled: true, title: 'Clinic Inbox', body: 'New WhatsApp message' }),
});
export type ShellSettings = z.infer<typeof ShellSettingsSchema>;

export const DEFAULT_SHELL_SETTINGS: ShellSettings = ShellSettingsSchema.parse({});

/** Settings from the file's text; anything unreadable falls back to the safe defaults. */
export function parseShellSettings(text: string | null): ShellSettings {
  if (text === null) return DEFAULT_SHELL_SETTINGS;
  try {
    const parsed = ShellSettingsSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : DEFAULT_SHELL_SETTINGS;
  } catch {
    return DEFAULT_SHELL_SETTINGS;
  }
}

export interface NotificationDecision {
  title: string;
  body: string;
}

/**
 * Whether to notify for a new inbound message, and with what. Takes no message content at all:
 * the type makes it impossible to leak patient text into the notification.
 */
export function notificationFor(settings: ShellSettings, state: { windowFocused: boolean }): NotificationDecision | null {
  if (!settings.notifications.enabled || state.windowFocused) return null;
  return { title: settings.notifications.title, body: settings.notifications.body };
}

/** Tray tooltip: a count, never names. */
export function trayTooltip(unread: number): string {
  if (unread <= 0) return 'Clinic Inbox';
  return `Clinic Inbox — ${unread > 999 ? '999+' : unread} unread`;
}

/** Badge text (macOS dock, tray title): short. */
export function badgeText(unread: number): string {
  if (unread <= 0) return '';
  return unread > 99 ? '99+' : String(unread);
}
