import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { podsockStateDir, removePodsockState } from '../../../scripts/bench/memory-systemd.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

void t.test('podsockStateDir follows podsock: /run/podsock/state for root, else below XDG_RUNTIME_DIR', async (t) => {
  t.equal(podsockStateDir('/run/user/0', 0), '/run/podsock/state');
  t.equal(podsockStateDir('/run/user/1000', 1000), '/run/user/1000/podsock/state');
  t.equal(podsockStateDir('', 1000), '/tmp/podsock-1000/state');
});

void t.test('removePodsockState removes only the plans and failure files of the benchmark', async (t) => {
  const state = tmpDir(t, 'psmem-state-test-');
  const plan = (...tokens: string[]): string => ['podsock-plan', '1', ...tokens, ''].join('\0');
  const files: Record<string, string> = {
    'launch-00000000000000aa.plan': plan('file', '/tmp/psmem-AbC/config/psmem-handover-1-1-0.container', '1:2:3:4'),
    'launch-00000000000000bb.plan': plan('file', '/tmp/psmem-AbCd/config/other.container', '1:2:3:4'),
    'launch-00000000000000cc.plan': plan('arg', 'x/tmp/psmem-AbC/y'),
    'notes.txt': '\0/tmp/psmem-AbC/',
    'psmem-handover-1-1-0.failures': '1',
    'someone-else.failures': '1',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(state, name), text);
  removePodsockState(state, '/tmp/psmem-AbC', ['psmem-handover-1-1-0', 'psmem-proxy-1-1-0']);
  const left = Object.keys(files).filter((f) => existsSync(join(state, f)));
  t.same(left, ['launch-00000000000000bb.plan', 'launch-00000000000000cc.plan', 'notes.txt', 'someone-else.failures']);
  removePodsockState(join(state, 'missing'), '/tmp/psmem-AbC', ['x']);
  t.pass('a missing state directory is not an error');
});
