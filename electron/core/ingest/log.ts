import type { Logger } from 'pino';
import type { IngestResult } from '../link/delivery';

/** The counts a summary adds up: ids and counts only, never text, names or numbers. */
const SUMMED = [
  'messages',
  'duplicateMessages',
  'unsupportedMessages',
  'echoes',
  'edits',
  'revokes',
  'calls',
  'reactions',
  'statuses',
  'duplicateStatuses',
  'shelved',
  'unattributable',
  'ignoredChanges',
  'invalidChanges',
  'valueErrors',
] as const satisfies readonly (keyof IngestResult['counts'])[];

export interface IngestLog {
  /** One debug line for a committed delivery, and its counts into the next summary. */
  delivery(result: IngestResult): void;
  /** Logs the summary now (if anything arrived since the last one). */
  flush(): void;
  stop(): void;
}

/**
 * The core's account of what arrived: one line per delivery at debug level, and every
 * `intervalMs` an info summary of the counts since the last one (messages, statuses, duplicates,
 * shelved and ignored items by reason and field). Quiet when nothing arrived.
 */
export function createIngestLog(logger: Logger, intervalMs = 60_000): IngestLog {
  const log = logger.child({ part: 'ingest' });
  let deliveries = 0;
  let deadLettered = 0;
  const sums: Record<string, number> = {};
  const ignoredByField: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};

  function reset(): void {
    deliveries = 0;
    deadLettered = 0;
    for (const k of Object.keys(sums)) delete sums[k];
    for (const k of Object.keys(ignoredByField)) delete ignoredByField[k];
    for (const k of Object.keys(errorCodes)) delete errorCodes[k];
  }

  function flush(): void {
    if (deliveries === 0) return;
    log.info({ deliveries, deadLettered, ...sums, ignoredByField: { ...ignoredByField }, errorCodes: { ...errorCodes } }, 'ingest summary');
    reset();
  }

  const timer = setInterval(flush, intervalMs);
  timer.unref();

  return {
    delivery(result) {
      deliveries += 1;
      if (result.deadLettered) deadLettered += 1;
      const counts: Record<string, number> = {};
      for (const key of SUMMED) {
        const n = result.counts[key];
        if (n > 0) {
          counts[key] = n;
          sums[key] = (sums[key] ?? 0) + n;
        }
      }
      for (const e of result.valueErrors) errorCodes[String(e.code)] = (errorCodes[String(e.code)] ?? 0) + 1;
      for (const [field, n] of Object.entries(result.ignoredByField)) ignoredByField[field] = (ignoredByField[field] ?? 0) + n;
      log.debug({ seq: result.relaySeq, deadLettered: result.deadLettered, signature: result.signature, ...counts }, 'delivery');
    },
    flush,
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}
