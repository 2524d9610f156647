/**
 * When to give memory back while a service runs: once it has been quiet (no connection) for `quietMs`,
 * first after start-up (not at the moment it became ready: the first request is being served then, and
 * on a small machine a release would take CPU from it), then after every burst of load that touched
 * code and buffers an idle service does not need. At most one release per quiet period: the next one
 * needs activity, then quiet again.
 *
 *   busy --activity(0)--> waiting --quietMs--> released
 *   waiting --activity(n>0)--> busy;  released --activity(n>0)--> busy;  any --close()--> closed
 */
import type { IdleClock } from '../idle/idle-timer.js';

export interface QuietReleaseOptions {
  quietMs: number;
  release: () => void;
  clock?: IdleClock;
}

export type QuietState = 'busy' | 'waiting' | 'released' | 'closed';

const realClock: IdleClock = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class QuietRelease {
  #state: QuietState;
  #timer: unknown = null;
  readonly #o: QuietReleaseOptions;
  readonly #clock: IdleClock;

  /** Starts 'busy': the first activity(0) starts the first quiet period. */
  constructor(o: QuietReleaseOptions) {
    this.#o = o;
    this.#clock = o.clock ?? realClock;
    this.#state = 'busy';
  }

  get state(): QuietState {
    return this.#state;
  }

  /** The number of open connections changed to `n`. */
  activity(n: number): void {
    if (this.#state === 'closed') return;
    if (n > 0) {
      this.#cancel();
      this.#state = 'busy';
      return;
    }
    if (this.#state !== 'busy') return;
    this.#state = 'waiting';
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#state !== 'waiting') return;
      this.#state = 'released';
      this.#o.release();
    }, this.#o.quietMs);
  }

  close(): void {
    this.#cancel();
    this.#state = 'closed';
  }

  #cancel(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }
}
