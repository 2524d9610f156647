/**
 * Giving memory back (native/memory.c): malloc_trim(3) and madvise(2) on clean file pages. The relay's
 * own buffers are given back by relayTrim() (relay.ts).
 */
import { call } from './addon.js';

interface MemoryBinding {
  mallocTrim(): boolean;
  dropFilePages(start: bigint, length: bigint): void;
}

/** malloc_trim(0) (malloc_trim(3)): give glibc's free pages back; true when some were. */
export function mallocTrim(): boolean {
  return call('malloc_trim', undefined, (b: MemoryBinding) => b.mallocTrim());
}

/**
 * madvise(MADV_DONTNEED) on `length` bytes from `start`, page-aligned: for a clean, read-only file
 * mapping (memory/file-pages.ts chooses them) the pages stay in the page cache and are mapped again on
 * the next access. Throws PODSOCK_ERR_NATIVE.
 */
export function dropFilePages(start: bigint, length: bigint): void {
  call('drop file pages', `0x${start.toString(16)}`, (b: MemoryBinding) => b.dropFilePages(start, length));
}
