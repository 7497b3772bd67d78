import type { Database } from '../types';

/**
 * Schema version 110: the events outbox.
 *
 * - `event_outbox`: events as they happen, written in the transaction of the change they describe
 *   (an ingest batch's events are one row: a JSON array), so queuing costs the core one small
 *   insert per commit however many subscribers there are. The events worker turns each row into
 *   `event_deliveries` rows (one per subscriber that wants the event) and deletes it, in one
 *   transaction on its own connection, in `id` order: the one stream keeps each conversation's order.
 *   Message text is in a row only when a subscriber allows it, and only until the worker took it.
 * - `event_deliveries_pending` is kept; nothing else changes.
 */
export const version = 110;
export const name = 'event-outbox';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE event_outbox (
      id INTEGER PRIMARY KEY,
      events TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT;
  `);
}
