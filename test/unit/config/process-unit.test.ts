import t from 'tap';
import { isUnitName, systemdCgroupPath, unitFromCgroup } from '../../../src/config/process-unit.js';
import { specifierContext } from '../../../src/config/specifier-context.js';
import { expandSpecifiers } from '../../../src/config/specifiers.js';

// /proc/self/cgroup of a user service on the test machine (hybrid hierarchy, systemd 252).
const HYBRID = [
  '9:name=systemd:/app.slice/app-qprobe\\x2dx.slice/qprobe-x@a-b\\x2dc\\x20d.service',
  '8:pids:/app.slice/app-qprobe\\x2dx.slice/qprobe-x@a-b\\x2dc\\x20d.service',
  '1:cpu:/app.slice',
  '0::/app.slice/app-qprobe\\x2dx.slice/qprobe-x@a-b\\x2dc\\x20d.service',
  '',
].join('\n');

void t.test('the unit of a process, as sd_pid_get_unit(3) and sd_pid_get_user_unit(3) find it', async (t) => {
  t.equal(unitFromCgroup(HYBRID), 'qprobe-x@a-b\\x2dc\\x20d.service');
  t.equal(unitFromCgroup('0::/system.slice/podsock@web.service\n'), 'podsock@web.service', 'a system service');
  t.equal(unitFromCgroup('0::/user.slice/user-1000.slice/user@1000.service/app.slice/podsock@web.service\n'), 'podsock@web.service', "a user manager's service");
  t.equal(unitFromCgroup('0::/user.slice/user-1000.slice/user@1000.service/init.scope\n'), 'init.scope');
  t.equal(unitFromCgroup('0::/user.slice/user-1000.slice/user@1000.service\n'), 'user@1000.service', 'the user manager itself');
  t.equal(unitFromCgroup('0::/user.slice/user-1000.slice/session-3.scope\n'), 'session-3.scope', 'a login session');
  t.equal(unitFromCgroup('0::/system.slice/_cpu.service/x\n'), 'cpu.service', 'cg_escape()d names');
  t.equal(unitFromCgroup('0::/\n'), null, "a container's cgroup namespace");
  t.equal(unitFromCgroup('0::/user.slice\n'), null, 'only slices');
  t.equal(unitFromCgroup('0::/not a unit\n'), null, 'not a unit name');
  t.equal(unitFromCgroup('12:name=systemd:/system.slice/legacy.service\n3:cpu:/\n'), 'legacy.service', 'a legacy hierarchy');
  t.equal(unitFromCgroup(''), null);
  t.equal(systemdCgroupPath(HYBRID), '/app.slice/app-qprobe\\x2dx.slice/qprobe-x@a-b\\x2dc\\x20d.service', 'the unified hierarchy first');
  t.equal(isUnitName(`${'a'.repeat(250)}.service`), false, 'longer than UNIT_NAME_MAX');
});

/** A fake /proc and /etc for specifierContext(). */
function files(over: Record<string, string> = {}): (p: string) => string {
  const all: Record<string, string> = {
    '/proc/self/cgroup': '0::/system.slice/podsock@web.service\n',
    '/etc/machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n',
    '/proc/sys/kernel/random/boot_id': 'a4f08960-5bca-4798-aba6-e51e16fbf14f\n',
    '/etc/os-release': 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/fish\n',
    '/etc/group': 'root:x:0:\nstaff:x:50:\n',
    ...over,
  };
  return (p) => {
    const v = all[p];
    if (v === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    return v;
  };
}

void t.test("the process's context", async (t) => {
  const root = specifierContext({ env: {}, uid: 0, gid: 0, fallbackUnit: 'web.service', readText: files() });
  t.equal(expandSpecifiers('%n %i %t %S %h %u %g %m %b %o %w', root), 'podsock@web.service web /run /var/lib /root root root 3d1219c7c4c5404aaa1f6d2a48adfda4 a4f089605bca4798aba6e51e16fbf14f debian 12');

  const underUser = specifierContext({ env: { MANAGERPID: '541', XDG_RUNTIME_DIR: '/run/user/0', HOME: '/root' }, uid: 0, gid: 0, fallbackUnit: 'web.service', readText: files() });
  t.equal(expandSpecifiers('%t %E', underUser), '/run/user/0 /root/.config', 'root under systemd --user: the user manager');

  const alice = specifierContext({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000, gid: 50, fallbackUnit: 'web.service', readText: files() });
  t.equal(expandSpecifiers('%u %g %h %s %t', alice), 'alice staff /home/alice /bin/fish /run/user/1000');

  const standalone = specifierContext({ env: {}, uid: 4242, gid: 4242, fallbackUnit: 'web.service', readText: files({ '/proc/self/cgroup': '0::/user.slice/user-4242.slice/session-2.scope\n' }) });
  t.equal(expandSpecifiers('%n %u %g %h', standalone), 'web.service 4242 4242 /', 'standalone: NAME.service; unknown ids are numbers');

  const noProc = specifierContext({ env: {}, uid: 0, gid: 0, fallbackUnit: 'web.service', readText: files({ '/etc/machine-id': 'uninitialized\n' }) });
  t.throws(() => expandSpecifiers('%m', noProc), /cannot expand '%m': \/etc\/machine-id does not hold a 128-bit id/);
});
