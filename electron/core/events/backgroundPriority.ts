// Delivery is background work: it must take a CPU only when the desk and ingest leave one free.
// The events worker lowers its own thread's scheduling priority where the OS allows that for one
// thread, and leaves it alone where the only knob would slow the whole core.
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';

export type BackgroundPlan = { kind: 'thread'; tid: number; priority: number } | { kind: 'none'; why: string };

/**
 * What lowering the calling thread means on `platform`, given what `/proc/thread-self` points at
 * (`<pid>/task/<tid>`; null when it cannot be read).
 *
 * - Linux: a nice value belongs to a thread (setpriority with a thread id touches that thread
 *   only), so the worker's thread goes to the lowest priority and the core's thread keeps its own.
 *   Raising a nice value needs no privilege.
 * - Windows: `os.setPriority` sets the priority class of the whole process (SetPriorityClass), and
 *   SetThreadPriority is not reachable from Node without a native addon: lowering would slow
 *   ingest with it. Nothing is done.
 * - macOS: `os.setPriority` is setpriority(PRIO_PROCESS, pid), again the whole process; a thread's
 *   own knob (pthread_set_qos_class_self_np) is not reachable from Node. Nothing is done.
 */
export function backgroundPlan(platform: NodeJS.Platform, threadSelf: string | null): BackgroundPlan {
  if (platform !== 'linux') return { kind: 'none', why: `${platform} sets priority per process only, and the core must keep its own` };
  const tid = threadSelf === null ? NaN : Number(/^\d+\/task\/(\d+)$/.exec(threadSelf)?.[1]);
  if (!Number.isSafeInteger(tid) || tid <= 0) return { kind: 'none', why: 'this thread’s id is not readable (/proc/thread-self)' };
  return { kind: 'thread', tid, priority: constants.priority.PRIORITY_LOW };
}

/** Lowers the calling thread's priority where `backgroundPlan` allows it; returns what was done. */
export function lowerThisThread(platform: NodeJS.Platform = process.platform): BackgroundPlan {
  let self: string | null = null;
  if (platform === 'linux') {
    try {
      self = readlinkSync('/proc/thread-self');
    } catch {
      // /proc not mounted (a container without it): the plan says so.
    }
  }
  const plan = backgroundPlan(platform, self);
  if (plan.kind !== 'thread') return plan;
  try {
    setPriority(plan.tid, plan.priority);
    return plan;
  } catch (err) {
    return { kind: 'none', why: `setpriority refused (${err instanceof Error && 'code' in err ? String(err.code) : 'error'})` };
  }
}
