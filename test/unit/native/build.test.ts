// The addon also compiles where the kernel headers predate Linux 6.1's io_uring (Debian 11, Ubuntu
// 20.04): with PODSOCK_HAVE_URING=0 the relay has its poll engine only, and nothing else changes.
// The compiler and Node's headers are the ones node-gyp used for build/ (build/config.gypi).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { addonSources, nodeDir } from './addon-sources.js';

const nodedir = nodeDir();

void t.test('the addon\'s sources compile with and without io_uring', async (t) => {
  t.ok(nodedir, 'build/config.gypi names the Node headers node-gyp used');
  if (nodedir === undefined) return;
  for (const have of ['1', '0']) {
    const args = ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-D_GNU_SOURCE', '-DNAPI_VERSION=8'];
    args.push(`-DPODSOCK_HAVE_URING=${have}`, '-I', join(nodedir, 'include', 'node'), '-fsyntax-only');
    args.push(...addonSources());
    let out = '';
    try {
      out = execFileSync('cc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      out = String((err as { stderr?: string }).stderr ?? err);
      t.fail(`PODSOCK_HAVE_URING=${have}: ${out}`);
      continue;
    }
    t.pass(`PODSOCK_HAVE_URING=${have} compiles without warnings`);
  }
});
