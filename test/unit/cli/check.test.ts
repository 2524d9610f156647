/**
 * `podsock check` through the built bin: the printed podman command, each warning as a line on
 * stderr, and the exit statuses (0 valid, 1 --strict with warnings, 78 invalid, 64 usage).
 * `podman image exists` is the real podman's answer, for an image that is never present.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'dist', 'bin', 'podsock.cjs');
const MISSING = 'localhost/podsock-check-no-such-image:0';

function podsock(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const base: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: '/nonexistent-runtime', HOME: '/nonexistent-home' };
  delete base.NODE_EXTRA_CA_CERTS;
  delete base.NOTIFY_SOCKET;
  delete base.RUNTIME_DIRECTORY;
  delete base.XDG_CONFIG_HOME;
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function containerFile(t: Test, lines: string[]): string {
  const dir = t.testdir({});
  const file = join(dir, 'svc.container');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const noPodman = { PODSOCK_PODMAN: '/nonexistent/podman' };

void t.test('a valid configuration: the command on stdout, exit 0', async (t) => {
  const file = containerFile(t, ['[Container]', `Image=${MISSING}`, 'Network=none', 'Exec=serve "a b"', '[Podsock]', 'IdleTimeout=infinity']);
  const r = podsock(['check', 'svc', '--config', file, '--listen', 'http=127.0.0.1:8080'], { ...noPodman, RUNTIME_DIRECTORY: '/rt/podsock-svc' });
  t.equal(r.status, 0);
  t.equal(
    r.stdout,
    `podman run --name podsock-svc --replace --rm --cidfile=/rt/podsock-svc/svc.cid --sdnotify=conmon --stop-timeout=10 --log-driver=passthrough ` +
      `--label io.podsock.service=svc --volume /rt/podsock-svc/podsock-XXXXXX:/run/podsock-notify:ro ` +
      `--env NOTIFY_SOCKET=/run/podsock-notify/notify.sock --detach --conmon-pidfile=/rt/podsock-svc/svc.conmon.pid --network none ${MISSING} serve 'a b'\n`,
  );
  t.equal(
    r.stderr,
    `${file}:2: warning: cannot check whether image '${MISSING}' is present: podman not found: PODSOCK_PODMAN='/nonexistent/podman' is not an executable file, ignoring [image-unchecked]\n` +
      `podsock check: 'svc' is valid ('${file}'; no unit file found); 1 warning\n`,
  );
  t.equal(podsock(['check', 'svc', '--config', file, '--strict'], noPodman).status, 1, '--strict: a warning fails');
});

void t.test('every configuration warning reaches stderr with file and line', async (t) => {
  const handover = containerFile(t, ['[Container]', `Image=${MISSING}`, 'Pull=never', 'PublishPort=8080:80', '[Podsock]', 'IdleTimeout=3s']);
  const r = podsock(['check', 'svc', '--config', handover]);
  t.equal(r.status, 0, 'warnings do not make it invalid');
  const lines = r.stderr.trimEnd().split('\n');
  t.same(
    lines.map((l) => /\[([a-z-]+)\]$/.exec(l)?.[1] ?? l),
    ['publish-in-handover', 'idle-timeout-short', 'idle-shorter-than-start', 'image-missing', "podsock check: 'svc' is valid ('" + handover + "'; no unit file found); 4 warnings"],
  );
  t.match(lines[0], new RegExp(`^${handover}:4: warning: PublishPort '8080:80' in handover mode`));
  t.match(lines[1], new RegExp(`^${handover}:6: warning: IdleTimeout '3s' is under 10s`));
  t.match(lines[3], new RegExp(`^${handover}:3: warning: image '${MISSING}' is not in local storage and the pull policy is 'never'`));

  const proxy = containerFile(t, ['[Container]', `Image=${MISSING}`, 'Network=none', '[Podsock]', 'Mode=proxy', 'Backend=80']);
  const p = podsock(['check', 'svc', '--config', proxy, '--idle-timeout', '1h']);
  const codes = p.stderr.trimEnd().split('\n').map((l) => /\[([a-z-]+)\]$/.exec(l)?.[1] ?? 'summary');
  if (process.getuid?.() === 0) {
    t.same(codes, ['image-not-local', 'summary'], 'rootful: Network=none is proxied from inside the container');
    t.match(p.stdout, / --pidfile=\S+\/svc\.pid --network none /, 'nothing published; the container pid for its namespace');
    t.notMatch(p.stdout, /--publish/);
  } else {
    t.same(codes, ['proxy-network-none', 'image-not-local', 'summary']);
    t.match(p.stdout, / --publish 127\.0\.0\.1::80\/tcp --network none /, 'the placeholder host port');
  }
  const flagWins = podsock(['check', 'svc', '--config', proxy, '--idle-timeout', '2s'], noPodman);
  t.match(flagWins.stderr, /^warning: IdleTimeout '2s' is under 10s/m, 'a flag value has no file line');
});

void t.test('proxy mode behind a restricted socket unit: the container address is named, rootful', { skip: process.getuid?.() === 0 ? false : 'rootful only' }, async (t) => {
  const dir = t.testdir({
    'svc.service': '[Service]\nType=notify\nKillMode=mixed\n',
    'svc.socket': '[Socket]\nListenStream=/run/svc.sock\nSocketMode=0600\n',
    'svc.container': `[Container]\nImage=${MISSING}\n[Podsock]\nMode=proxy\nBackend=80\n`,
  });
  const r = podsock(['check', 'svc', '--config', join(dir, 'svc.container'), '--unit', join(dir, 'svc.service'), '--idle-timeout', '1h'], noPodman);
  t.equal(r.status, 0);
  t.match(r.stderr, /svc\.container:4: warning: the socket unit restricts access \(SocketMode=0600\), but the container is on podman's default network, .*set Network=none.* \[proxy-bridge-reachable\]/);
  writeFileSync(join(dir, 'svc.container'), `[Container]\nImage=${MISSING}\nNetwork=none\n[Podsock]\nMode=proxy\nBackend=80\n`);
  const none = podsock(['check', 'svc', '--config', join(dir, 'svc.container'), '--unit', join(dir, 'svc.service'), '--idle-timeout', '1h'], noPodman);
  t.notMatch(none.stderr, /proxy-bridge-reachable/, 'Network=none: no container address');
});

void t.test('the unit: found by name or given with --unit', async (t) => {
  const units = t.testdir({
    systemd: { user: { 'svc.service': '[Service]\nType=simple\nKillMode=mixed\nExecStart=/x run svc\n' } },
    'good.service': '[Service]\nType=notify\nKillMode=mixed\n',
    'svc.container': `[Container]\nImage=${MISSING}\n`,
  });
  const file = join(units, 'svc.container');
  const found = podsock(['check', 'svc', '--config', file], { ...noPodman, XDG_CONFIG_HOME: units });
  t.match(found.stderr, new RegExp(`^${units}/systemd/user/svc\\.service:2: warning: Type= is 'simple': .* \\[unit-type-not-notify\\]$`, 'm'));
  t.match(found.stderr, new RegExp(`; unit '${units}/systemd/user/svc\\.service'\\); 2 warnings\\n$`));
  const given = podsock(['check', 'svc', '--config', file, '--unit', join(units, 'good.service')], noPodman);
  t.notMatch(given.stderr, /\[unit-/);
  t.equal(podsock(['check', 'svc', '--config', file, '--unit', join(units, 'missing.service')], noPodman).status, 64);
});

void t.test('an invalid configuration exits 78 and prints no command', async (t) => {
  const file = containerFile(t, ['[Container]', `Image=${MISSING}`, '[Podsock]', 'Mode=proxy']);
  const r = podsock(['check', 'svc', '--config', file], noPodman);
  t.equal(r.status, 78);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^podsock: .*svc\.container:4: Mode: proxy mode needs the container port to forward to/);
  const bad = containerFile(t, ['[Container]', `Image=${MISSING}`, 'Bogus=1']);
  t.equal(podsock(['check', 'svc', '--config', bad], noPodman).status, 78);
  t.equal(podsock(['check', 'svc', '--config', join(t.testdir({}), 'none.container')], noPodman).status, 78);
});
