/**
 * Which of this process's mappings can give their pages back without losing anything, from the text of
 * /proc/self/smaps (proc(5)). A mapping qualifies when it maps a regular file read-only and none of its
 * pages was ever copied on write (`Anonymous: 0 kB`, no dirty page): dropping its page-table entries
 * (madvise(2) MADV_DONTNEED, native/memory.c) leaves the pages in the page cache and the next access
 * maps them again from the file. Start-up leaves some 35 MiB of node's executable mapped this way (V8's
 * snapshot, the code that parsed and compiled podsock), counted in podsock's RSS and PSS for as long as
 * it runs. Pure.
 */

/** A range of addresses to drop, as bigints (addresses do not fit a double exactly). */
export interface FileRange {
  start: bigint;
  end: bigint;
  /** The mapped file, for logs. */
  path: string;
  /** Resident KiB in the range when smaps was read. */
  rssKiB: number;
}

/** VmFlags (proc(5)) that rule a mapping out: locked, I/O or PFN mappings, no-dump special mappings. */
const UNTOUCHABLE_FLAGS = new Set(['lo', 'io', 'pf', 'dd', 'sh']);

interface Vma {
  start: bigint;
  end: bigint;
  perms: string;
  inode: string;
  path: string;
  fields: Map<string, number>;
  flags: string[];
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) ([rwxsp-]{4}) [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ (\d+)\s*(.*)$/;

function parseSmaps(text: string): Vma[] {
  const out: Vma[] = [];
  let cur: Vma | null = null;
  for (const line of text.split('\n')) {
    const h = HEADER.exec(line);
    if (h !== null) {
      cur = { start: BigInt(`0x${h[1]}`), end: BigInt(`0x${h[2]}`), perms: h[3] as string, inode: h[4] as string, path: (h[5] as string).trim(), fields: new Map(), flags: [] };
      out.push(cur);
      continue;
    }
    if (cur === null) continue;
    const f = /^([A-Za-z_]+):\s+(\d+) kB$/.exec(line);
    if (f !== null) cur.fields.set(f[1] as string, Number(f[2]));
    else if (line.startsWith('VmFlags:')) cur.flags = line.slice(8).trim().split(/\s+/);
  }
  return out;
}

/**
 * The mappings of `smaps` whose resident pages can be dropped: private or shared, not writable, of a
 * regular file that still exists (an inode, a path, not `(deleted)`, not a device or a memfd), with
 * resident pages and without anonymous (copied-on-write) or dirty ones, and none of the VmFlags that
 * make madvise refuse or misbehave. A field missing from the text counts as a reason to keep the mapping.
 */
export function droppableFileRanges(smaps: string): FileRange[] {
  const out: FileRange[] = [];
  for (const v of parseSmaps(smaps)) {
    if (v.perms[1] !== '-' || v.inode === '0' || !v.path.startsWith('/')) continue;
    if (v.path.endsWith('(deleted)') || v.path.startsWith('/dev/') || v.path.startsWith('/memfd:')) continue;
    const rss = v.fields.get('Rss');
    const clean = ['Anonymous', 'Private_Dirty', 'Shared_Dirty', 'Swap'].every((k) => v.fields.get(k) === 0);
    if (rss === undefined || rss === 0 || !clean || v.flags.length === 0 || v.flags.some((f) => UNTOUCHABLE_FLAGS.has(f))) continue;
    out.push({ start: v.start, end: v.end, path: v.path, rssKiB: rss });
  }
  return out;
}
