// How responsive the event loop stayed while a test did something heavy.
import type { Test } from 'tap';

/**
 * Starts a 10 ms interval timer; `stop()` ends it and returns the longest gap (ms) between two of its
 * ticks or from the last one to the stop, `ticks()` counts the ticks so far. Stopped at teardown.
 */
export function gapMeter(t: Test): { stop: () => number; ticks: () => number } {
  let maxGap = 0;
  let ticks = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 10);
  t.teardown(() => clearInterval(timer));
  return {
    stop: (): number => {
      clearInterval(timer);
      return Math.max(maxGap, performance.now() - last);
    },
    ticks: () => ticks,
  };
}
