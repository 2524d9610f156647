/**
 * `podsock check` and the Quadlet features, through the built bin: the command shows values after
 * specifier expansion (for the unit checked), the files that made the configuration are listed in
 * order, and a Notify= that Ready= overrides is a warning.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'dist', 'bin', 'podsock.cjs');
const MISSING = 'localhost/podsock-check-no-such-image:0';

function podsock(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const base: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: '/run/user/4321', HOME: '/home/checker', PODSOCK_PODMAN: '/nonexistent/podman' };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NOTIFY_SOCKET', 'RUNTIME_DIRECTORY', 'XDG_CONFIG_HOME', 'MANAGERPID', 'XDG_STATE_HOME']) delete base[k];
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

void t.test('values after expansion, for the unit checked; the files in order', async (t) => {
  const dir = t.testdir({});
  const d = join(dir, 'svc.container.d');
  mkdirSync(d);
  writeFileSync(join(dir, 'svc.container'), `[Container]\nImage=${MISSING}\nNetwork=none\nEnvironment=HOME_DIR=%h\n`);
  writeFileSync(join(d, '20-b.conf'), '[Container]\nEnvironment=UNIT=%n INSTANCE=%i LITERAL=100%%\n');
  writeFileSync(join(d, '10-a.conf'), '[Container]\nEnvironment=\n');
  const unit = join(dir, 'podsock@.service');
  writeFileSync(unit, '[Service]\nExecStart=/usr/bin/podsock run %i\n');

  const r = podsock(['check', 'svc', '--unit', unit], { PODSOCK_CONFIG_DIR: dir });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, / --env UNIT=podsock@svc\.service --env INSTANCE=svc --env LITERAL=100% /, 'the unit podsock@.service runs as podsock@svc.service');
  t.notMatch(r.stdout, /HOME_DIR/, 'the empty Environment= in 10-a.conf reset the list');
  t.match(r.stderr, `podsock check: configuration made from '${join(dir, 'svc.container')}', '${join(d, '10-a.conf')}', '${join(d, '20-b.conf')}'\n`);

  const standalone = podsock(['check', 'svc'], { PODSOCK_CONFIG_DIR: dir });
  t.match(standalone.stdout, / --env UNIT=svc\.service --env INSTANCE= /, 'no unit file: NAME.service, as run has standalone');
});

void t.test('Notify= that Ready= overrides is a warning; an unknown specifier is an error', async (t) => {
  const dir = t.testdir({
    'svc.container': `[Container]\nImage=${MISSING}\nNetwork=none\nNotify=healthy\n[Podsock]\nReady=notify\n`,
    'bad.container': `[Container]\nImage=${MISSING}\nEnvironment=A=%Z\n`,
  });
  const r = podsock(['check', 'svc'], { PODSOCK_CONFIG_DIR: dir });
  t.equal(r.status, 0);
  t.match(r.stderr, `${join(dir, 'svc.container')}:4: warning: Notify=healthy is not used: Ready=notify is set and wins; remove one of them [notify-overridden]`);
  const bad = podsock(['check', 'bad'], { PODSOCK_CONFIG_DIR: dir });
  t.equal(bad.status, 78);
  t.match(bad.stderr, `${join(dir, 'bad.container')}:3: Environment='A=%Z': unknown specifier '%Z'`);
});
