import type { Database } from '../types';

/**
 * Schema version 140: the audit log can be pruned past its retention policy and still verify.
 *
 * `audit_anchor` holds one row per pruning: the last entry it removes (`through_seq`) and that
 * entry's hash, the policy's cut, and the seq of the ordinary chained entry the pruning wrote first
 * (`record_seq`), which states the same seq and hash. A verifier starts at `through_seq + 1`, whose
 * prev_hash must be `through_hash`, and checks that the record says so too: an anchor moved past
 * more entries, or given another hash, no longer matches the chain.
 *
 * The log's DELETE trigger now lets through only entries at or behind the latest anchor, so an
 * entry is deleted only after the anchor naming it was committed. UPDATE stays refused. Anchors
 * are append-only and only move forward; each must name an entry that exists with that hash and a
 * record that follows it. These triggers guard against mistakes (a query run by hand, a bug); the
 * tamper evidence is the chain and the relay's witness of its head.
 */
export const version = 140;
export const name = 'audit-prune-anchor';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE audit_anchor (
      through_seq INTEGER PRIMARY KEY CHECK (through_seq > 0),
      through_hash TEXT NOT NULL,
      cut_at INTEGER NOT NULL,
      pruned_at INTEGER NOT NULL,
      record_seq INTEGER NOT NULL,
      CHECK (record_seq > through_seq)
    ) STRICT;
    CREATE TRIGGER audit_anchor_append_only_update BEFORE UPDATE ON audit_anchor
      BEGIN SELECT RAISE(ABORT, 'audit_anchor is append-only'); END;
    CREATE TRIGGER audit_anchor_append_only_delete BEFORE DELETE ON audit_anchor
      BEGIN SELECT RAISE(ABORT, 'audit_anchor is append-only'); END;
    CREATE TRIGGER audit_anchor_forward_only BEFORE INSERT ON audit_anchor
      WHEN NEW.through_seq <= (SELECT coalesce(max(through_seq), 0) FROM audit_anchor)
      BEGIN SELECT RAISE(ABORT, 'audit_anchor only moves forward'); END;
    CREATE TRIGGER audit_anchor_names_the_chain BEFORE INSERT ON audit_anchor
      WHEN NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.through_seq AND hash = NEW.through_hash)
        OR NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.record_seq)
      BEGIN SELECT RAISE(ABORT, 'audit_anchor must name an entry of the log and its pruning record'); END;

    DROP TRIGGER audit_log_append_only_delete;
    CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
      WHEN OLD.seq > (SELECT coalesce(max(through_seq), 0) FROM audit_anchor)
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: only entries behind the pruning anchor may be deleted'); END;
  `);
}
