import t from 'tap';
import type { ServiceConfig } from '../../../src/config/load.js';
import { podmanRunCommand, shellQuote, trampoline, type RunPlan } from '../../../src/runtime/podman-argv.js';

const cfg = {
  name: 'web',
  source: null,
  containerName: 'podsock-web',
  image: 'localhost/web:1',
  command: ['serve', '--port', '8080'],
  podmanOptions: ['--network', 'none', '--env', 'A=$(x) "y"'],
  mode: 'handover',
  ready: { kind: 'started' },
  idleTimeoutMs: 300_000,
  startTimeoutMs: 90_000,
  stopTimeoutMs: 2500,
  backends: [],
  maxConnections: 4096,
  connectionIdleTimeoutMs: null,
  proxyProtocol: [],
  hasHealthCheck: false,
  publishPorts: [],
  network: 'none',
  pull: null,
  keyLines: {},
} as unknown as ServiceConfig;

const plan: RunPlan = {
  cidfile: '/run/podsock/web.cid',
  notifyDir: '/run/podsock/podsock-abc123',
  notifySocketName: 'notify.sock',
  podmanNotifySocket: '/run/podsock/podsock-def456/notify.sock',
  handover: { names: ['http', 'https'] },
  publish: [],
  conmonPidfile: null,
  pidfile: null,
  unit: 'web.service',
  selinux: false,
};

void t.test('handover: podsock-owned flags, then the user options, image and command; LISTEN_* in env', async (t) => {
  const { args, env } = podmanRunCommand(cfg, plan);
  t.same(args, [
    'run', '--name', 'podsock-web', '--replace', '--rm', '--cidfile=/run/podsock/web.cid', '--sdnotify=conmon',
    '--stop-timeout=3', '--log-driver=passthrough', '--label', 'io.podsock.service=web',
    '--volume', '/run/podsock/podsock-abc123:/run/podsock-notify:ro', '--env', 'NOTIFY_SOCKET=/run/podsock-notify/notify.sock',
    '--network', 'none', '--env', 'A=$(x) "y"', 'localhost/web:1', 'serve', '--port', '8080',
  ]);
  t.same(env, { NOTIFY_SOCKET: '/run/podsock/podsock-def456/notify.sock', PODMAN_SYSTEMD_UNIT: 'web.service', LISTEN_FDS: '2', LISTEN_FDNAMES: 'http:https' });
  t.notOk('LISTEN_PID' in env, 'LISTEN_PID is set by the trampoline, not here');
});

void t.test('proxy: backends published on loopback only; no LISTEN_*; SELinux relabel', async (t) => {
  const { args, env } = podmanRunCommand(cfg, { ...plan, handover: null, unit: null, selinux: true, publish: [{ hostPort: 41000, containerPort: 8080 }, { hostPort: 0, containerPort: 8443 }, { hostPort: 41001, containerPort: 53, protocol: 'udp' }] });
  t.ok(args.includes('/run/podsock/podsock-abc123:/run/podsock-notify:ro,z'));
  const i = args.indexOf('--publish');
  t.same(args.slice(i, i + 6), ['--publish', '127.0.0.1:41000:8080/tcp', '--publish', '127.0.0.1::8443/tcp', '--publish', '127.0.0.1:41001:53/udp']);
  t.same(env, { NOTIFY_SOCKET: '/run/podsock/podsock-def456/notify.sock' }, 'podman reports to podsock, never to systemd');
});

void t.test('the trampoline passes every value as a positional parameter', async (t) => {
  const tr = trampoline('/usr/bin/podman', ['run', '$(touch x)', "it's"]);
  t.equal(tr.file, '/bin/sh');
  t.same(tr.args, ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', '/usr/bin/podman', 'run', '$(touch x)', "it's"]);
  t.equal(shellQuote(['podman', 'run', 'a b', "it's", '$x', 'plain-1.0:/x']), `podman run 'a b' 'it'\\''s' '$x' plain-1.0:/x`);
});

void t.test('proxy mode by the container address: --pidfile, nothing published', async (t) => {
  const { args } = podmanRunCommand(cfg, { ...plan, handover: null, publish: [], pidfile: '/run/podsock/web.pid' });
  t.ok(args.includes('--pidfile=/run/podsock/web.pid'));
  t.notOk(args.includes('--publish'));
  t.ok(args.indexOf('--pidfile=/run/podsock/web.pid') < args.indexOf('localhost/web:1'), 'before the image');
});

void t.test('detached: --detach and --conmon-pidfile before the user options, as Quadlet runs it', async (t) => {
  const { args } = podmanRunCommand(cfg, { ...plan, conmonPidfile: '/run/podsock/web.conmon.pid' });
  const i = args.indexOf('--detach');
  t.ok(i > 0, '--detach');
  t.equal(args[i + 1], '--conmon-pidfile=/run/podsock/web.conmon.pid');
  t.ok(i < args.indexOf('localhost/web:1') && i < args.indexOf('--network'), 'before the user options and the image');
  t.notOk(podmanRunCommand(cfg, plan).args.includes('--detach'), 'attached without a conmon pidfile');
});
