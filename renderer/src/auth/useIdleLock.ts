import { useEffect, useRef } from 'react';

const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart'] as const;

/**
 * Calls `onIdle` once nobody touched keyboard, mouse or screen for `minutes`. Input only moves a
 * timestamp; one timer checks it when the deadline comes, so a laptop lid closed past the deadline
 * locks at once on wake.
 */
export function useIdleLock(minutes: number, enabled: boolean, onIdle: () => void): void {
  const callback = useRef(onIdle);
  callback.current = onIdle;
  useEffect(() => {
    if (!enabled) return;
    const idleMs = minutes * 60_000;
    let last = Date.now();
    let timer: ReturnType<typeof setTimeout>;
    const check = (): void => {
      const left = last + idleMs - Date.now();
      if (left <= 0) callback.current();
      else timer = setTimeout(check, left);
    };
    const touched = (): void => {
      last = Date.now();
    };
    for (const name of INPUT_EVENTS) window.addEventListener(name, touched, { capture: true, passive: true });
    timer = setTimeout(check, idleMs);
    return () => {
      clearTimeout(timer);
      for (const name of INPUT_EVENTS) window.removeEventListener(name, touched, { capture: true });
    };
  }, [minutes, enabled]);
}
