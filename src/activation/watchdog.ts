/**
 * podsock's own watchdog (WATCHDOG_USEC from systemd, sd_watchdog_enabled(3)) while a container runs:
 * podsock pings at half the interval until the container is seen pinging by itself; from then on only
 * the container's pings are passed on, so that a hung app trips the watchdog instead of being covered
 * by podsock's liveness.
 */
import type { Logger } from '../log.js';

/** The timer functions the watchdog uses; injectable so tests drive it with a fake clock. */
export interface WatchdogClock {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realClock: WatchdogClock = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface WatchdogOptions {
  /** systemd's interval, or null when the unit has no WatchdogSec=. */
  intervalMs: number | null;
  /** Sends to systemd; never throws. */
  notify: (fields: Array<[string, string]>) => void;
  log: Logger;
  /** Defaults to the global timers. */
  clock?: WatchdogClock;
}

/** Owns the ping timer of one activation; `close()` is idempotent. */
export class Watchdog {
  private readonly o: WatchdogOptions;
  private containerPings = false;
  private timer: unknown = null;
  private readonly clock: WatchdogClock;

  constructor(o: WatchdogOptions) {
    this.o = o;
    this.clock = o.clock ?? realClock;
  }

  /** The container runs: ping at half the interval (at least every 100 ms) while it does not ping itself. */
  start(): void {
    if (this.o.intervalMs === null || this.timer !== null) return;
    const every = Math.max(100, Math.floor(this.o.intervalMs / 2));
    this.timer = this.clock.setInterval(() => {
      if (!this.containerPings) this.o.notify([['WATCHDOG', '1']]);
    }, every);
  }

  /** The container sent WATCHDOG=1: pass it on (when systemd watches podsock) and stop pinging for it. */
  containerPinged(): void {
    if (!this.containerPings) this.o.log.debug('The container pings the watchdog itself; forwarding its pings');
    this.containerPings = true;
    if (this.o.intervalMs !== null) this.o.notify([['WATCHDOG', '1']]);
  }

  close(): void {
    if (this.timer !== null) this.clock.clearInterval(this.timer);
    this.timer = null;
  }
}
