/**
 * Bounded, cancellable retry for the readiness probes that have to poll (tcp, http, healthy).
 *
 * Readiness races events rather than sleep-polling; only probes poll, and then with a delay that grows
 * exponentially up to a cap and a sleep that an AbortSignal cancels at once. Nothing here keeps the
 * process alive after an abort: the pending timer is cleared and the abort listener removed.
 */

import { PodsockError } from '../errors.js';

/** How the delay between two attempts grows: initialMs, initialMs*factor, ... capped at maxMs. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /**
   * Fraction in [0, 1] of each delay that is randomised away (0.2: a 500 ms delay becomes 400–500 ms), so
   * that several probes started together do not hit the backend in lockstep. Default 0.
   */
  jitter?: number;
}

/**
 * The probes' default: 5 ms, 6 ms, 8 ms, ... up to 50 ms. The first request waits on the probe, so a
 * backend that comes up is seen within 50 ms (within a few ms in the first tenth of a second, when most
 * apps start listening); a refused connect costs microseconds, so twenty a second for a slow start is
 * nothing.
 */
export const DEFAULT_BACKOFF: Readonly<Required<BackoffOptions>> = Object.freeze({
  initialMs: 5,
  maxMs: 50,
  factor: 1.25,
  jitter: 0,
});

function expect(ok: boolean, name: string, wanted: string, value: unknown): void {
  if (!ok) {
    throw new PodsockError(
      'PODSOCK_ERR_INTERNAL',
      `Expected the \`${name}\` backoff option to be ${wanted}, got \`${String(value)}\` (${typeof value})`,
      { details: { option: name, value } },
    );
  }
}

/**
 * Fill in defaults for `options` and validate them: initialMs a positive finite number, maxMs finite and at
 * least initialMs, factor finite and at least 1, jitter in [0, 1]. Throws PODSOCK_ERR_INTERNAL otherwise
 * (these come from code, not from users). Returns a frozen object.
 */
export function resolveBackoff(options: Partial<BackoffOptions> = {}): Readonly<Required<BackoffOptions>> {
  const resolved = { ...DEFAULT_BACKOFF, ...withoutUndefined(options) };
  const { initialMs, maxMs, factor, jitter } = resolved;
  expect(Number.isFinite(initialMs) && initialMs > 0, 'initialMs', 'a positive number', initialMs);
  expect(Number.isFinite(maxMs) && maxMs >= initialMs, 'maxMs', `a number of at least initialMs (${initialMs})`, maxMs);
  expect(Number.isFinite(factor) && factor >= 1, 'factor', 'a number of at least 1', factor);
  expect(Number.isFinite(jitter) && jitter >= 0 && jitter <= 1, 'jitter', 'a number from 0 to 1', jitter);
  return Object.freeze(resolved);
}

function withoutUndefined(options: Partial<BackoffOptions>): Partial<BackoffOptions> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/**
 * The delay that follows `previousMs` (pure): previousMs*factor, capped at maxMs. Jitter is not applied
 * here (see {@link jittered}), so the sequence stays deterministic.
 */
export function nextDelay(previousMs: number, options: Readonly<Required<BackoffOptions>>): number {
  return Math.min(previousMs * options.factor, options.maxMs);
}

/** `delayMs` minus a random part of up to `jitter` of it; `random` returns a number in [0, 1). */
export function jittered(delayMs: number, jitter: number, random: () => number = Math.random): number {
  return delayMs * (1 - jitter * random());
}

/**
 * Resolve after `ms` milliseconds, or reject with `signal.reason` as soon as `signal` aborts (at once if it
 * already has). Either way the timer and the abort listener are gone afterwards.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settle like `promise`, or reject with `signal.reason` as soon as `signal` aborts, whichever comes first.
 * A later rejection of `promise` is swallowed (the caller has moved on), so it cannot become unhandled.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => {});
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/**
 * Call `attempt` until it resolves `true`, sleeping with exponential backoff between attempts.
 *
 * Contract: resolves once an attempt returns true. Rejects with `signal.reason` as soon as `signal` aborts,
 * even while an attempt is still running (each attempt gets the signal so it can release its socket or
 * child at once). Rejects with an attempt's error when an attempt throws: attempts return `false` for
 * "not yet" and throw only for conditions that retrying cannot fix. There is no attempt limit or deadline
 * here: the caller owns the deadline and aborts the signal when it passes.
 */
export async function pollUntil(
  attempt: (signal: AbortSignal) => Promise<boolean>,
  options: { signal: AbortSignal; backoff?: Partial<BackoffOptions>; random?: () => number },
): Promise<void> {
  const { signal } = options;
  const backoff = resolveBackoff(options.backoff);
  let delay = backoff.initialMs;
  for (;;) {
    signal.throwIfAborted();
    if (await abortable(attempt(signal), signal)) return;
    await sleep(jittered(delay, backoff.jitter, options.random), signal);
    delay = nextDelay(delay, backoff);
  }
}
