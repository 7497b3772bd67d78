import type { Database } from '../types';

/**
 * Schema version 90: appointments booked from a conversation, and signed events for the clinic's
 * other systems.
 *
 * - `calendar_bookings`: one row per appointment booked through Google Calendar, on the contact
 *   (it goes with the patient on erasure). `reference` is the short code the patient can quote;
 *   `google_event_id` is ours (chosen before the insert, so a retried insert answers 409 instead of
 *   booking twice). `reminder_state` is set once: `sent` (with the outbound message), or why not.
 *   The calendar's settings and the Google connection's state are rows in `settings`; the refresh
 *   token is in the keychain, never here.
 * - `event_subscriptions`: an endpoint, the events it wants, whether message text may go out; the
 *   HMAC secret sealed under a key derived from the database key (shown once, then only used).
 * - `event_deliveries`: the outbox and delivery log in one: a row per event per subscriber, kept
 *   in order per `ordering_key` (the conversation); the body is dropped once delivered or failed,
 *   so the log keeps status, attempts and latency, never what was sent.
 */
export const version = 90;
export const name = 'calendar-events';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE calendar_bookings (
      id INTEGER PRIMARY KEY,
      reference TEXT NOT NULL UNIQUE,
      contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
      conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
      calendar_id TEXT NOT NULL,
      calendar_label TEXT NOT NULL,
      google_event_id TEXT NOT NULL UNIQUE,
      start_at INTEGER NOT NULL,
      end_at INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')),
      reminder_state TEXT CHECK (reminder_state IS NULL OR reminder_state IN ('sent', 'opted_out', 'passed', 'no_template')),
      reminder_at INTEGER,
      reminder_message_id INTEGER,
      created_by TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      CHECK (end_at > start_at)
    ) STRICT;
    CREATE INDEX calendar_bookings_by_contact ON calendar_bookings (contact_id, start_at);
    CREATE INDEX calendar_bookings_reminder_due ON calendar_bookings (start_at) WHERE status = 'booked' AND reminder_state IS NULL;

    CREATE TABLE event_subscriptions (
      id INTEGER PRIMARY KEY,
      url TEXT NOT NULL,
      events_json TEXT NOT NULL,
      include_text INTEGER NOT NULL DEFAULT 0 CHECK (include_text IN (0, 1)),
      enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
      plain_http INTEGER NOT NULL DEFAULT 0 CHECK (plain_http IN (0, 1)),
      secret_sealed TEXT NOT NULL,
      created_by TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE event_deliveries (
      id INTEGER PRIMARY KEY,
      subscription_id INTEGER NOT NULL REFERENCES event_subscriptions(id) ON DELETE CASCADE,
      event_id TEXT NOT NULL,
      type TEXT NOT NULL,
      ordering_key TEXT NOT NULL,
      contact_id INTEGER,
      body TEXT,
      status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER,
      last_status_code INTEGER,
      latency_ms INTEGER,
      last_error TEXT,
      created_at INTEGER NOT NULL,
      delivered_at INTEGER,
      UNIQUE (subscription_id, event_id),
      CHECK (status = 'pending' OR body IS NULL)
    ) STRICT;
    CREATE INDEX event_deliveries_pending ON event_deliveries (subscription_id, ordering_key, id) WHERE status = 'pending';
    CREATE INDEX event_deliveries_log ON event_deliveries (subscription_id, id);
  `);
}
