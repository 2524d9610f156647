// The addon's relay under AddressSanitizer: its C sources are compiled again with -fsanitize=address
// into a temporary addon, and test/fixtures/relay-stress.mjs drives thousands of short connections
// through it with aborts at every point of a relay's life (before, during and after connecting, from
// inside its own and other relays' callbacks, with clients and backends that reset or leave). A use
// after free, a double free or an overflow aborts the child with ASan's report; bytes that reach the
// wrong connection fail the fixture's own check. Once with the real ring sizes, once with a 4-entry
// submission queue and a pool of 4 buffers (full queues and an empty pool all the time), once with every
// 13th submission slot refused (native/uring.c URING_FAULT_SQE_EVERY: a cancel or a no-op that cannot
// be queued, as under memory pressure), once with both (a buffer given back whose waiter's receive cannot
// be queued), and once on the poll engine. A run that stalls (a relay waiting
// for a completion or a buffer that never comes) exits 2 after 30 s without progress, printing the
// engine's counters; one that hangs otherwise fails by its deadline. Needs gcc and libasan (Debian: gcc, libasan8): skipped without them, except under CI,
// where a missing toolchain is a failure.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { tmpDir } from '../../helpers/tmp-dir.js';
import { addonSources, nodeDir, root } from './addon-sources.js';

const SOURCES = addonSources();
const STRESS = join(root, 'test', 'fixtures', 'relay-stress.mjs');
const CONNECTIONS = 3000;
/** A 4-entry submission queue and a pool of 4 buffers. */
const TINY = ['-DURING_SQ_ENTRIES=4', '-DURING_CQ_ENTRIES=8', '-DURING_BUFS=4'];

/** libasan's path from gcc, or why it cannot be had. */
function toolchain(): { libasan: string } | { missing: string } {
  let libasan: string;
  try {
    libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  } catch {
    return { missing: 'no gcc' };
  }
  // gcc prints the bare name back when it has no such library.
  if (!isAbsolute(libasan) || !existsSync(libasan)) return { missing: 'gcc has no libasan (Debian: libasan8)' };
  return { libasan };
}

const tools = toolchain();
const missing = 'missing' in tools ? tools.missing : null;
const skip = missing !== null && !process.env.CI ? `${missing}: the AddressSanitizer build is skipped` : false;

void t.test('the relay under AddressSanitizer: many short connections and aborts', { skip }, async (t) => {
  if (missing !== null) {
    t.fail(`${missing}: under CI the AddressSanitizer build must run`);
    return;
  }
  const libasan = (tools as { libasan: string }).libasan;
  const nodedir = nodeDir();
  t.ok(nodedir, 'build/config.gypi names the Node headers node-gyp used');
  if (nodedir === undefined) return;
  const dir = tmpDir(t, 'podsock-asan-');

  const build = (name: string, defines: string[]): string => {
    const out = join(dir, `${name}.node`);
    const args = ['-std=gnu11', '-shared', '-fPIC', '-g', '-O1', '-fsanitize=address', '-fno-omit-frame-pointer'];
    args.push('-D_GNU_SOURCE', '-DNAPI_VERSION=8', ...defines, '-I', join(nodedir, 'include', 'node'), ...SOURCES, '-o', out);
    execFileSync('gcc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return out;
  };
  const real = build('real', []);
  const tiny = build('tiny', TINY);
  const refusing = build('refusing', ['-DURING_FAULT_SQE_EVERY=13']);
  const both = build('tiny-refusing', [...TINY, '-DURING_FAULT_SQE_EVERY=13']);

  const runs: Array<[string, string, string]> = [
    ['io_uring', real, 'auto'],
    ['io_uring with tiny queues and pool', tiny, 'auto'],
    ['io_uring refusing every 13th submission slot', refusing, 'auto'],
    ['io_uring with tiny queues and pool, refusing every 13th slot', both, 'auto'],
    ['poll engine', real, 'poll'],
  ];
  for (const [what, addon, engine] of runs) {
    const r = spawnSync(process.execPath, [STRESS, addon, String(CONNECTIONS), engine, '12345'], {
      env: { ...process.env, LD_PRELOAD: libasan, ASAN_OPTIONS: 'detect_leaks=0' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.error !== undefined) t.comment(`${what}: ${r.error.message}`);
    const report = /ERROR: AddressSanitizer[^\n]*/.exec(r.stderr)?.[0];
    t.equal(report, undefined, `${what}: no AddressSanitizer report`);
    if (report !== undefined) t.comment(r.stderr.split('\n').slice(0, 40).join('\n'));
    t.equal(r.status, 0, `${what}: the stress run exits 0 (${r.signal !== null ? `killed by ${r.signal} at its deadline` : r.stderr.trim().split('\n').slice(-3).join(' | ')})`);
    let stats: Record<string, number> = {};
    try {
      stats = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, number>;
    } catch {
      // No counters: the run died or was killed; the exit status above says so.
    }
    t.equal(stats.connections, CONNECTIONS, `${what}: every connection ran`);
    t.equal(stats.wrong, 0, `${what}: no connection got bytes that were not its own`);
    t.comment(`${what}: ${JSON.stringify(stats)}`);
  }
});
