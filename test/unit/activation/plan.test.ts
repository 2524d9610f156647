// The plan an activation leaves after a successful start: the fields in planBytes()'s order, and a plan
// that cannot be written only logged. planBytes() itself is prestart.test.ts's concern.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { leavePlan, type StartedCommand } from '../../../src/activation/plan.js';
import { recordLog } from './record-log.js';

function started(runtimeDir: string): StartedCommand {
  return {
    runtimeDir,
    unlinks: [join(runtimeDir, 'web.cid')],
    notifyDirs: { container: join(runtimeDir, 'podsock-AAAAAA'), podman: join(runtimeDir, 'podsock-BBBBBB') },
    fds: 1,
    exe: '/usr/bin/podman',
    argv: ['/usr/bin/podman', 'run', 'localhost/web'],
    env: { PATH: '/usr/bin' },
  };
}

void t.test('the plan names the command, its directories, notify sockets and files to check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-leave-plan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { log, records } = recordLog();
  const path = join(dir, 'state', 'web.plan');
  leavePlan({ path, checkFiles: () => [] }, started(join(dir, 'run')), log);
  t.same(records, [], 'nothing logged');
  const words = readFileSync(path, 'utf8').split('\0');
  t.same(words.slice(0, 2), ['podsock-plan', '1']);
  t.same(
    words.slice(2, 11),
    ['mkdir', join(dir, 'run'), 'unlink', join(dir, 'run', 'web.cid'), 'notify', join(dir, 'run', 'podsock-AAAAAA'), '711', 'notify', join(dir, 'run', 'podsock-BBBBBB')],
    'directories, run files and notify sockets, the container\'s first',
  );
  t.ok(words.includes('/usr/bin/podman') && words.includes('localhost/web'), 'the command');
});

void t.test('a plan that cannot be written is a warning, ignored', async (t) => {
  const { log, records } = recordLog();
  leavePlan({ path: 'relative.plan', checkFiles: () => [] }, started('/run/podsock'), log);
  t.same(
    records.map((r) => [r.level, r.msg]),
    [['warn', 'Cannot write the plan for podsock-launch, ignoring']],
  );
});
