/**
 * Consecutive failures of one service, remembered across activations so that podsock can back off
 * instead of crash-looping. Every failed activation under systemd exits, and systemd (Restart=, or the
 * socket on the next connection) starts podsock again; a service that fails at once would trip the
 * socket's TriggerLimitBurst= (20 activations in 2 s for Accept=no) and take the socket down
 * (systemd.socket(5)). So before exiting after a failure podsock waits
 * 1 s, 2 s, 4 s … (at most 30 s), saying so in STATUS=. A container that stayed ready for a while
 * resets the count, and so does a quiet period.
 *
 * The record is a small JSON file in podsock's per-user state directory (not the unit's
 * RuntimeDirectory=, which systemd removes when the service stops), made and read as private-files.ts
 * says: another user's directory, a planted symbolic link or file is never written through.
 */
import { dirname } from 'node:path';
import { privateDir, readPrivateFile, removePrivateFile, STATE_DIR_LEVELS, writePrivateFile } from './private-files.js';

export const BACKOFF_MAX_MS = 30_000;
/** A failure this long after the previous one starts a new count. */
export const FAILURE_MEMORY_MS = 5 * 60_000;
/** A container ready at least this long counts as a success (resets the count). */
export const HEALTHY_AFTER_MS = 10_000;
/** A record is a few dozen bytes; anything longer is not one. */
const RECORD_MAX = 4096;

interface Record_ {
  count: number;
  lastAt: number;
}

/** Delay before exiting after the `n`-th consecutive failure (n ≥ 1): 0, 1 s, 2 s, 4 s … 30 s. Pure. */
export function backoffFor(n: number): number {
  if (n <= 1) return 0;
  return Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(n - 2, 15));
}

function read(file: string): Record_ | null {
  try {
    const r = JSON.parse(readPrivateFile(file, RECORD_MAX)?.toString('utf8') ?? 'null') as Partial<Record_> | null;
    if (r === null) return null;
    if (typeof r.count === 'number' && Number.isSafeInteger(r.count) && r.count >= 0 && typeof r.lastAt === 'number') {
      return { count: r.count, lastAt: r.lastAt };
    }
  } catch {
    // unreadable, or not a private file: no history
  }
  return null;
}

/** Record one more failure at `now`; returns the consecutive count including it. Never throws. */
export function recordFailure(file: string, now: number): number {
  const prev = read(file);
  const count = prev !== null && now - prev.lastAt < FAILURE_MEMORY_MS ? prev.count + 1 : 1;
  try {
    privateDir(dirname(file), STATE_DIR_LEVELS);
    writePrivateFile(file, Buffer.from(JSON.stringify({ count, lastAt: now })));
  } catch {
    // Without a record podsock just does not back off; never fail the service for it.
  }
  return count;
}

/** Forget the failures (the service worked). Never throws. */
export function clearFailures(file: string): void {
  try {
    removePrivateFile(file);
  } catch {
    // Not removable (a directory planted there): the count still ends after FAILURE_MEMORY_MS.
  }
}
