import type { Migration } from '../types';
import * as m0010 from './0010-initial';
import * as m0020 from './0020-audit-log';
import * as m0030 from './0030-quick-replies';
import * as m0040 from './0040-accounts';
import * as m0050 from './0050-audit-reports';
import * as m0060 from './0060-backups';
import * as m0070 from './0070-privacy';
import * as m0080 from './0080-message-shapes';
import * as m0090 from './0090-calendar-events';
import * as m0100 from './0100-clinic-reactions';
import * as m0110 from './0110-event-outbox';
import * as m0120 from './0120-search-shards';
import * as m0130 from './0130-audit-hash-unindexed';
import * as m0140 from './0140-audit-prune-anchor';
import * as m0150 from './0150-media-files';

/** Every migration, oldest first. A new schema version is a new file here, numbered in steps of 10. */
export const MIGRATIONS: readonly Migration[] = [m0010, m0020, m0030, m0040, m0050, m0060, m0070, m0080, m0090, m0100, m0110, m0120, m0130, m0140, m0150];
