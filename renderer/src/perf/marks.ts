/**
 * User-timing marks the benchmark (bench/ui.bench.ts) reads: when a screen has content on it, in
 * the frame after React committed it. Marks carry ids only, never content.
 */
export function markPainted(name: string): void {
  requestAnimationFrame(() => performance.mark(`clinic-inbox:${name}`));
}
