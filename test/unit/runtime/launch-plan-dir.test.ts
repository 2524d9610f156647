// podsock-launch (native/launch.c) reads a plan only from a state directory whose parent is this user's
// too: without XDG_RUNTIME_DIR the plan lives in /tmp/podsock-UID/state, and another user who made
// /tmp/podsock-UID could put a `state` there that leads to any directory of the victim's. Run as an
// unused uid (setpriv) so that /tmp/podsock-UID is this test's own; a stand-in for node records
// PODSOCK_PRESTART.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const LAUNCHER = join(fileURLToPath(new URL('../../..', import.meta.url)), 'build', 'Release', 'podsock-launch');
const uid = 40000 + (process.pid % 10000);
const top = `/tmp/podsock-${uid}`;

void t.test('a plan under another user\'s /tmp/podsock-UID is not read', { skip: process.geteuid?.() !== 0 ? 'needs root to change uid' : !existsSync(LAUNCHER) && 'podsock-launch is not built' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-lpd-'));
  chmodSync(dir, 0o755);
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(top, { recursive: true, force: true });
  });
  rmSync(top, { recursive: true, force: true });
  const out = join(dir, 'node.out');
  writeFileSync(out, '');
  chownSync(out, uid, uid);
  const fakeNode = join(dir, 'fake-node.sh');
  writeFileSync(fakeNode, `{ echo "plan=$PODSOCK_PLAN"; echo "prestart=$PODSOCK_PRESTART"; } > '${out}'\n`);
  chmodSync(fakeNode, 0o755);
  const launch = (): Record<string, string> => {
    const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', LAUNCHER, '/bin/sh', fakeNode, 'run', 'svc'], {
      env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent' },
      encoding: 'utf8',
    });
    t.equal(r.status, 0, r.stderr);
    return Object.fromEntries(readFileSync(out, 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  const plan = launch().plan ?? '';
  t.equal(plan.startsWith(`${top}/state/launch-`), true, `the plan's place without XDG_RUNTIME_DIR (${plan})`);

  // A private directory of the victim's holding a file in the plan's name (not a valid plan: reading it is enough).
  const victims = join(dir, 'victim', 'state');
  mkdirSync(victims, { recursive: true, mode: 0o700 });
  for (const d of [join(dir, 'victim'), victims]) chownSync(d, uid, uid);
  writeFileSync(join(victims, basename(plan)), 'podsock-plan\x001\x00bogus\x00x\x00', { mode: 0o600 });
  chownSync(join(victims, basename(plan)), uid, uid);
  // Another user's /tmp/podsock-UID, with `state` leading there.
  mkdirSync(top, { mode: 0o777 });
  chmodSync(top, 0o777);
  symlinkSync(victims, join(top, 'state'));
  chownSync(top, uid + 1, uid + 1);
  t.equal(launch().prestart, "none the plan's directory is not private to this user");

  // Under a /tmp/podsock-UID of this user's, a `state` that is a symbolic link is refused too; the same
  // files in a real directory there are read (and this one is not a plan).
  chownSync(top, uid, uid);
  chmodSync(top, 0o700);
  t.equal(launch().prestart, "none the plan's directory is not private to this user", 'a symbolic link for the state directory');
  rmSync(join(top, 'state'));
  renameSync(victims, join(top, 'state'));
  t.match(launch().prestart, /^none the plan has an unknown record/, 'read from private directories');
});
