// Which thread the events worker may lower, per platform, and that on Linux it lowers its own
// thread only: the core's thread, which ingests and answers the desk, keeps its priority.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { threadNices } from '../testing/threads';
import { backgroundPlan } from './backgroundPriority';

describe('background priority for the events worker', () => {
  it('lowers only a thread, and only where the OS has a per-thread knob', () => {
    expect(backgroundPlan('linux', '4242/task/4250')).toEqual({ kind: 'thread', tid: 4250, priority: 19 });
    for (const platform of ['win32', 'darwin'] as const) expect(backgroundPlan(platform, '4242/task/4250').kind).toBe('none');
    // Never a guess at the process id: that would lower the core's own thread.
    expect(backgroundPlan('linux', null).kind).toBe('none');
    expect(backgroundPlan('linux', '4242').kind).toBe('none');
  });

  it.runIf(process.platform === 'linux')('on Linux the calling worker thread gets nice 19 and the main thread keeps its own', async () => {
    const mainBefore = threadNices().get(process.pid);
    const module = new URL('./backgroundPriority.ts', import.meta.url).href;
    // A plain worker importing the module through tsx, as the events worker does from source.
    const worker = new Worker(
      `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(module)}); }).then(({ lowerThisThread }) => {
         const { parentPort } = require('node:worker_threads');
         parentPort.postMessage(lowerThisThread());
       });`,
      { eval: true },
    );
    try {
      const plan = await new Promise<{ kind: string; tid?: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(plan.kind).toBe('thread');
      const nices = threadNices();
      expect(nices.get(plan.tid!)).toBe(19);
      expect(plan.tid).not.toBe(process.pid);
      expect(nices.get(process.pid)).toBe(mainBefore);
    } finally {
      await worker.terminate();
    }
  });
});
