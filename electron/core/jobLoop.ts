import type { Logger } from 'pino';

export interface JobLoopOptions {
  /** For log lines: `outbox`, `media`. */
  name: string;
  logger: Logger;
  /** One pass over the work that is due; returns how many items it tried. Never runs twice at once. */
  pass(): Promise<number>;
  /** How long to wait after a pass when nothing asked for another sooner (due times, polling, pauses). */
  idleDelayMs(): number;
  /** Runs once at `start()`, before the first pass (recovering what a crash interrupted). */
  onStart?(): void;
}

export interface JobLoop {
  start(): void;
  /** Stops the timer and waits for a pass in progress to finish. */
  stop(): Promise<void>;
  /** New work arrived: run a pass now, or right after the current one. */
  kick(): void;
  /** One pass now (or join the running one and ask for another); tests drive the loop with this. */
  runOnce(): Promise<number>;
  readonly stopped: boolean;
}

/**
 * The background loop shared by the outbox worker and the media downloader: one pass at a time,
 * kicks during a pass coalesce into one more pass, and otherwise a timer waits until the next item
 * falls due. A pass that throws is logged (class only: the error may quote data) and the loop goes on.
 */
export function createJobLoop(options: JobLoopOptions): JobLoop {
  let started = false;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;
  let again = false;

  function schedule(delayMs: number): void {
    if (!started || stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void runOnce();
    }, delayMs);
    timer.unref?.();
  }

  function runOnce(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = options
      .pass()
      .catch((err: unknown) => {
        options.logger.error({ err: err instanceof Error ? err.name : 'error' }, `${options.name} pass failed`);
        return 0;
      })
      .finally(() => {
        running = null;
        const soon = again;
        again = false;
        schedule(soon ? 0 : options.idleDelayMs());
      });
    return running;
  }

  return {
    start() {
      if (started) return;
      started = true;
      options.onStart?.();
      schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
    kick() {
      if (!started || stopped) return;
      if (running) again = true;
      else schedule(0);
    },
    runOnce,
    get stopped() {
      return stopped;
    },
  };
}
