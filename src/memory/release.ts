/**
 * Give back what start-up needed once the service is ready (and again whenever it goes quiet): a full
 * garbage collection, glibc's free pages (malloc_trim(3)), the relay's receive buffers while no
 * connection uses them (relayTrim in native.ts), and the clean file pages start-up mapped
 * (file-pages.ts). A service that runs for hours keeps only what serving touches. Best effort: a step
 * that is not possible here is skipped; nothing here throws.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { relayTrim } from '../native/relay.js';
import { dropFilePages, mallocTrim } from '../native/memory.js';
import { droppableFileRanges } from './file-pages.js';

export interface ReleaseReport {
  /** PSS of this process before and after, KiB (/proc/self/smaps_rollup), or null where unreadable. */
  pssBeforeKiB: number | null;
  pssAfterKiB: number | null;
  /** Resident KiB of file pages dropped. */
  droppedKiB: number;
  /** KiB of relay buffers given back (their whole size, resident or not). */
  relayKiB: number;
}

let collect: ((options?: object) => void) | null | undefined;

/**
 * V8's most thorough collection, reached without --expose-gc on the command line (node's own flags stay
 * as they are): the gc extension's `flavor: 'last-resort'` runs CollectAllAvailableGarbage, which also
 * compacts and gives back the young generation's unused pages (v8 src/extensions/gc-extension.cc).
 * Measured on a proxy-mode podsock after a burst: about 1 MiB less anonymous memory than a plain gc().
 */
function fullGc(): void {
  if (collect === undefined) {
    try {
      const require = createRequire(import.meta.url);
      const v8 = require('node:v8') as typeof import('node:v8');
      const vm = require('node:vm') as typeof import('node:vm');
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as (options?: object) => void;
    } catch {
      collect = null;
    }
  }
  collect?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

function pssKiB(): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** Collect, trim and drop; returns what it measured. */
export function releaseMemory(): ReleaseReport {
  const pssBeforeKiB = pssKiB();
  let droppedKiB = 0;
  let relayKiB = 0;
  try {
    relayKiB = Math.round(relayTrim() / 1024);
  } catch {
    // an addon without it
  }
  try {
    fullGc();
  } catch {
    // no collection here
  }
  try {
    mallocTrim();
  } catch {
    // an addon without it, or not glibc
  }
  try {
    for (const r of droppableFileRanges(readFileSync('/proc/self/smaps', 'utf8'))) {
      try {
        dropFilePages(r.start, r.end - r.start);
        droppedKiB += r.rssKiB;
      } catch {
        // unmapped or changed meanwhile: keep it
      }
    }
  } catch {
    // no /proc
  }
  return { pssBeforeKiB, pssAfterKiB: pssKiB(), droppedKiB, relayKiB };
}
