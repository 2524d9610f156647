import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { parseListenAddress } from '../../../src/listeners/listen-address.js';
import { serviceUnit, type ServiceUnitInput } from '../../../src/generate/service-unit.js';
import { listenStreamValue, socketUnits } from '../../../src/generate/socket-units.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const listen = (raw: string): { raw: string; spec: ReturnType<typeof parseListenAddress> } => ({ raw, spec: parseListenAddress(raw) });

const SERVICE: ServiceUnitInput = {
  name: 'web',
  podsock: ['/usr/bin/node', '/opt/podsock/dist/cli/main.js'],
  podman: '/usr/bin/podman',
  containerName: 'podsock-web',
  configInUnit: '%h/.config/podsock/web.container',
  sockets: ['web.socket'],
  startTimeoutMs: 90_000,
  stopTimeoutMs: 10_000,
  env: [['CONTAINERS_CONF', '/etc/x y/containers.conf']],
  header: ['hdr'],
};

void t.test('ListenStream= values in the forms systemd reads', async (t) => {
  t.equal(listenStreamValue(listen('8080')), '8080', 'a bare port stays a bare port (dual-stack)');
  t.equal(listenStreamValue(listen('localhost:8080')), '127.0.0.1:8080');
  t.equal(listenStreamValue(listen('[::1]:8080')), '[::1]:8080');
  t.equal(listenStreamValue(listen('http=0.0.0.0:80')), '0.0.0.0:80');
  t.equal(listenStreamValue(listen('/run/a%b.sock')), '/run/a%%b.sock');
  t.equal(listenStreamValue(listen('@abstract')), '@abstract');
  t.equal(listenStreamValue(listen('api=9000')), '9000');
  t.equal(listenStreamValue(listen('udp:5353')), '5353', 'udp: is the directive, not the value');
  t.equal(listenStreamValue(listen('dns=udp:[::1]:53')), '[::1]:53');
});

void t.test('udp: addresses become ListenDatagram= lines', async (t) => {
  const units = socketUnits({ name: 'dns', listens: [listen('dns=udp:127.0.0.1:53'), listen('dns=127.0.0.1:53')], service: 'dns.service', header: [] });
  t.equal(units.length, 1, 'one name, one unit');
  t.match(units[0]?.text, /first connection or datagram starts dns\.service\.\nListenDatagram=127\.0\.0\.1:53\nListenStream=127\.0\.0\.1:53\n/);
});

void t.test('one socket unit per FileDescriptorName=', async (t) => {
  const units = socketUnits({ name: 'web', listens: [listen('http=127.0.0.1:80'), listen('admin=/run/a.sock'), listen('http=[::1]:80')], service: 'web.service', header: ['hdr'] });
  t.same(units.map((u) => u.file), ['web.socket', 'web-admin.socket']);
  t.equal(
    units[0]?.text,
    [
      '# hdr',
      '[Unit]',
      'Description=Sockets of the podsock service web',
      '',
      '[Socket]',
      '# systemd listens here; the first connection starts web.service.',
      'ListenStream=127.0.0.1:80',
      'ListenStream=[::1]:80',
      '# The name the container sees in LISTEN_FDNAMES (and that Backend=NAME=PORT refers to).',
      'FileDescriptorName=http',
      '',
      '[Install]',
      '# `systemctl enable` this socket, not the service: the socket starts the service.',
      'WantedBy=sockets.target',
      '',
    ].join('\n'),
  );
  t.match(units[1]?.text, /\nListenStream=\/run\/a\.sock\n#[^\n]*\nFileDescriptorName=admin\nService=web\.service\n/);
  const unnamed = socketUnits({ name: 'web', listens: [listen('8080')], service: 'podsock@web.service', header: [] });
  t.notMatch(unnamed[0]?.text, /FileDescriptorName/);
  t.match(unnamed[0]?.text, /\nService=podsock@web\.service\n/, 'the template instance');
});

void t.test('the service unit', async (t) => {
  const { file, text } = serviceUnit(SERVICE);
  t.equal(file, 'web.service');
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.same(lines, [
    '[Unit]',
    'Description=podsock: socket-activated container web',
    'Requires=web.socket',
    'After=web.socket',
    '[Service]',
    'Type=notify',
    'NotifyAccess=main',
    'ExecStart=/usr/bin/node /opt/podsock/dist/cli/main.js run web --config %h/.config/podsock/web.container',
    'KillMode=mixed',
    'Restart=on-failure',
    'RestartSec=2s',
    'TimeoutStartSec=2min',
    'TimeoutStopSec=40s',
    'RuntimeDirectory=podsock-web',
    'RuntimeDirectoryMode=0700',
    'Environment=PODMAN_SYSTEMD_UNIT=%n',
    'Environment="CONTAINERS_CONF=/etc/x y/containers.conf"',
    'ExecStopPost=-/usr/bin/podman stop --ignore podsock-web',
    'ExecStopPost=-/usr/bin/podman rm --force --ignore podsock-web',
  ]);
  const two = serviceUnit({ ...SERVICE, sockets: ['web.socket', 'web-admin.socket'], configInUnit: null }).text;
  t.match(two, /\nSockets=web\.socket web-admin\.socket\n/);
  t.match(two, /\nExecStart=\/usr\/bin\/node \/opt\/podsock\/dist\/cli\/main\.js run web\n/);
});

const analyze = spawnSync('systemd-analyze', ['--version']);
void t.test('systemd-analyze verify accepts the generated units', { skip: analyze.status === 0 ? false : 'no systemd-analyze here' }, async (t) => {
  const dir = t.testdir({});
  // systemd-analyze --user needs a runtime directory; a private one keeps the host's manager out of it.
  // Short, because the user units shipped with the OS put socket paths below it (108-byte limit).
  const runtime = tmpDir(t, 'psk-');
  const env = { ...process.env, XDG_RUNTIME_DIR: runtime };
  const units = [
    ...socketUnits({ name: 'vfy', listens: [listen('127.0.0.1:18080'), listen('admin=/run/vfy admin.sock')], service: 'vfy.service', header: ['hdr'] }),
    serviceUnit({ ...SERVICE, name: 'vfy', podsock: [process.execPath, '/opt/podsock/main.js'], sockets: ['vfy.socket', 'vfy-admin.socket'], podman: process.execPath }),
  ];
  for (const u of units) writeFileSync(join(dir, u.file), u.text);
  // --user: the user manager's view, as `podsock generate --user` writes for; the paths only need to exist for ExecStart.
  const r = spawnSync('systemd-analyze', ['--user', 'verify', ...units.map((u) => join(dir, u.file))], {
    env,
    encoding: 'utf8',
  });
  t.equal(r.stderr, '', 'no complaints');
  t.equal(r.status, 0);
  // And it would complain: a unit systemd cannot read fails the same check.
  writeFileSync(join(dir, 'bad.service'), '[Service]\nType=notify\nExecStart=/nonexistent/podsock run x\nBogus=1\n');
  const bad = spawnSync('systemd-analyze', ['--user', 'verify', join(dir, 'bad.service')], { env, encoding: 'utf8' });
  t.match(bad.stderr, /Unknown key 'Bogus'/);
  t.not(bad.status, 0);
});
