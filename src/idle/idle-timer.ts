/**
 * Idle tracking as an explicit state machine.
 *
 *   busy  --arm() / activity(0)-->  armed  --timeout-->  fired
 *   armed --disarm() / activity(n>0)-->  busy
 *   any   --close()-->  closed
 *
 * 'fired' and 'closed' are terminal: once the timer has fired the caller is already stopping, so
 * later activity is ignored rather than resurrecting a service that is on its way out.
 *
 * Unlike systemd-socket-proxyd, which arms its idle timer only when the last connection is released
 * (socket-proxyd.c connection_release()), podsock also arms it at startup via arm(): a service that
 * is activated but never sees a connection (a port scan that closed before accept, a health check
 * that gave up) still idles out instead of running forever.
 */
import { PodsockError, q } from '../errors.js';

/** The timer functions the idle timer uses; injectable so tests drive it with a fake clock. */
export interface IdleClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** 'busy': not armed (connections active, or not armed yet); 'armed': counting down; 'fired', 'closed': terminal. */
export type IdleState = 'armed' | 'busy' | 'fired' | 'closed';

export interface IdleTimerOptions {
  /** Idle time after which onIdle runs; null means never (systemd's 'infinity'). */
  timeoutMs: number | null;
  /** Called once, when the timer fires. */
  onIdle: () => void;
  /** Defaults to the global timers. */
  clock?: IdleClock;
}

// setTimeout() treats delays above 2^31-1 ms (~24.8 days) as 1 ms (Node timers docs), so longer
// timeouts are scheduled as a chain of chunks of at most this size.
const MAX_TIMER_MS = 2_147_483_647;

const realClock: IdleClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Calls `onIdle` once after `timeoutMs` without activity. The owner reports the number of active
 * connections with activity(count): the timer arms when the count becomes 0 and disarms while it is
 * above 0. arm() arms it at startup; arming an already armed timer keeps the original deadline.
 * After the timer has fired or close() was called, every method is a no-op. With `timeoutMs: null`
 * the state machine still moves between 'busy' and 'armed' but never fires. Throws
 * PODSOCK_ERR_INTERNAL for an invalid timeout or count (a caller bug, not user input).
 */
export class IdleTimer {
  readonly timeoutMs: number | null;
  #state: IdleState = 'busy';
  #handle: unknown = undefined;
  #remainingMs = 0;
  #generation = 0;
  readonly #onIdle: () => void;
  readonly #clock: IdleClock;

  constructor(opts: IdleTimerOptions) {
    const { timeoutMs } = opts;
    if (timeoutMs !== null && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new PodsockError(
        'PODSOCK_ERR_INTERNAL',
        `Expected the idle timeout to be a non-negative number of milliseconds or null, got ${q(timeoutMs)}`,
      );
    }
    this.timeoutMs = timeoutMs;
    this.#onIdle = opts.onIdle;
    this.#clock = opts.clock ?? realClock;
  }

  get state(): IdleState {
    return this.#state;
  }

  /** Report the current number of active connections: 0 arms, more than 0 disarms. */
  activity(activeCount: number): void {
    if (!Number.isInteger(activeCount) || activeCount < 0) {
      throw new PodsockError(
        'PODSOCK_ERR_INTERNAL',
        `Expected the active count to be a non-negative integer, got ${q(activeCount)}`,
      );
    }
    if (activeCount === 0) this.arm();
    else this.disarm();
  }

  /** Start counting down unless already armed, fired or closed. */
  arm(): void {
    if (this.#state !== 'busy') return;
    this.#state = 'armed';
    if (this.timeoutMs === null) return;
    this.#remainingMs = this.timeoutMs;
    this.#schedule();
  }

  /** Stop counting down (a connection is active); a later arm() starts a full timeout again. */
  disarm(): void {
    if (this.#state !== 'armed') return;
    this.#cancel();
    this.#state = 'busy';
  }

  /** Stop for good without firing. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#cancel();
    this.#state = 'closed';
  }

  #schedule(): void {
    const chunk = Math.min(this.#remainingMs, MAX_TIMER_MS);
    this.#remainingMs -= chunk;
    const generation = this.#generation;
    this.#handle = this.#clock.setTimeout(() => this.#expired(generation), chunk);
  }

  #expired(generation: number): void {
    // A clock may still deliver a callback it was asked to cancel; only the current countdown fires.
    if (generation !== this.#generation || this.#state !== 'armed') return;
    this.#handle = undefined;
    if (this.#remainingMs > 0) {
      this.#schedule();
      return;
    }
    this.#state = 'fired';
    this.#onIdle();
  }

  #cancel(): void {
    this.#generation++;
    if (this.#handle !== undefined) {
      this.#clock.clearTimeout(this.#handle);
      this.#handle = undefined;
    }
  }
}
