import { readFileSync } from 'node:fs';
import t from 'tap';
import { droppableFileRanges } from '../../../src/memory/file-pages.js';
import { releaseMemory } from '../../../src/memory/release.js';

/** One smaps entry (proc(5)) with the fields the selection reads. */
function vma(header: string, f: Partial<Record<'Rss' | 'Anonymous' | 'Private_Dirty' | 'Shared_Dirty' | 'Swap', number>>, flags = 'rd ex mr mw me sd'): string {
  const v = { Rss: 100, Anonymous: 0, Private_Dirty: 0, Shared_Dirty: 0, Swap: 0, ...f };
  return [
    header,
    'Size:                400 kB',
    `Rss:               ${v.Rss} kB`,
    'Pss:                 50 kB',
    `Shared_Dirty:        ${v.Shared_Dirty} kB`,
    `Private_Dirty:       ${v.Private_Dirty} kB`,
    `Anonymous:           ${v.Anonymous} kB`,
    `Swap:                ${v.Swap} kB`,
    `VmFlags: ${flags}`,
  ].join('\n');
}

void t.test('read-only, clean, resident mappings of regular files are chosen; everything else is kept', async (t) => {
  const text = [
    vma('00400000-00b6f000 r--p 00000000 08:01 1234 /usr/bin/node', { Rss: 6788 }),
    vma('00b72000-025fe000 r-xp 00772000 08:01 1234 /usr/bin/node', { Rss: 20792 }),
    vma('0563a000-0563e000 r--p 0523a000 08:01 1234 /usr/bin/node', { Rss: 16, Anonymous: 8, Private_Dirty: 8 }), // RELRO: relocated, copied on write
    vma('0563e000-0565d000 rw-p 0523e000 08:01 1234 /usr/bin/node', { Rss: 124, Private_Dirty: 92, Anonymous: 92 }), // writable data
    vma('0565d000-05689000 rw-p 00000000 00:00 0 ', { Rss: 164, Anonymous: 164 }), // anonymous
    vma('06a65000-06c80000 rw-p 00000000 00:00 0                                  [heap]', { Rss: 2084, Anonymous: 2084 }),
    vma('7f0000000000-7f0000010000 r--p 00000000 08:01 99 /usr/lib/libx.so (deleted)', { Rss: 40 }),
    vma('7f0000010000-7f0000020000 r--s 00000000 00:05 77 /dev/shm/x', { Rss: 40 }),
    vma('7f0000020000-7f0000030000 r--s 00000000 00:01 78 /memfd:x', { Rss: 40 }),
    vma('7f0000030000-7f0000040000 r-xp 00000000 08:01 55 /usr/lib/liblocked.so', { Rss: 40 }, 'rd ex mr mw me lo'),
    vma('7f0000040000-7f0000050000 r-xp 00000000 08:01 56 /usr/lib/libcold.so', { Rss: 0 }),
    vma('7f0000050000-7f0000060000 r--p 00000000 08:01 57 /usr/lib/libswapped.so', { Rss: 40, Swap: 4 }),
    vma('7f0000060000-7f0000070000 rw-s 00000000 00:0f 2000 anon_inode:[io_uring]', { Rss: 64 }),
    vma('7ffa92e00000-7ffa92f92000 r-xp 02600000 08:01 1234 /usr/bin/node', { Rss: 768 }),
  ].join('\n');
  const got = droppableFileRanges(`${text}\n`);
  t.same(
    got.map((r) => [r.start.toString(16), r.end.toString(16), r.path, r.rssKiB]),
    [
      ['400000', 'b6f000', '/usr/bin/node', 6788],
      ['b72000', '25fe000', '/usr/bin/node', 20792],
      ['7ffa92e00000', '7ffa92f92000', '/usr/bin/node', 768],
    ],
  );
});

void t.test('a mapping whose fields are missing is kept', async (t) => {
  t.same(droppableFileRanges('00400000-00b6f000 r--p 00000000 08:01 1234 /usr/bin/node\nRss: 100 kB\n'), []);
  t.same(droppableFileRanges(''), []);
});

void t.test("this process's own smaps: only read-only file mappings, and dropping them keeps it working", async (t) => {
  const before = droppableFileRanges(readFileSync('/proc/self/smaps', 'utf8'));
  t.ok(before.length > 0, 'node maps its executable read-only');
  t.ok(before.every((r) => r.path.startsWith('/') && r.end > r.start));
  const r = releaseMemory();
  t.ok(r.droppedKiB > 0, `dropped ${r.droppedKiB} KiB`);
  if (r.pssBeforeKiB !== null && r.pssAfterKiB !== null) t.ok(r.pssAfterKiB < r.pssBeforeKiB, `PSS ${r.pssBeforeKiB} -> ${r.pssAfterKiB} KiB`);
  // The code and data of node are mapped again on use: everything still runs.
  const json = JSON.stringify({ a: [1, 2, 3], s: 'x'.repeat(1000) });
  t.equal((JSON.parse(json) as { s: string }).s.length, 1000);
  t.match(new Intl.NumberFormat('en-US').format(1234567), /1,234,567/);
  t.equal(releaseMemory().relayKiB >= 0, true, 'a second release works too');
});
