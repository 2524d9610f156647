// loadConfig() and the Quadlet features of a .container file: specifiers, Notify=, newer keys.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig, type LoadOptions, type ServiceConfig } from '../../../src/config/load.js';
import { caught } from '../../helpers/caught.js';
import { fixedSpecifiers } from '../../helpers/specifiers.js';

function load(t: Test, text: string, extra: Partial<LoadOptions> = {}): ServiceConfig & { dir: string } {
  const dir = t.testdir({ 'web.container': text });
  return { ...loadConfig({ name: 'web', env: { PODSOCK_CONFIG_DIR: dir }, uid: 1000, flags: {}, extraArgs: [], specifiers: fixedSpecifiers(), ...extra }), dir };
}

void t.test('specifiers are expanded in every kind of value, word by word', async (t) => {
  const cfg = load(
    t,
    [
      '[Container]',
      'Image=localhost/%p:%i',
      'ContainerName=app-%i',
      'Exec=/bin/run --unit %n "--home=%h"',
      'Environment=UNIT=%n "WHERE=%t/x y"',
      'Volume=%h/data:/data',
      'Label=unit=%N',
      'AddCapability=%u',
      'PodmanArgs=--hostname=%l',
      'HealthCmd=check %i',
      '[Podsock]',
      'Mode=proxy',
      'Backend=8080',
      'Ready=http:/%i/health',
    ].join('\n'),
    { specifiers: fixedSpecifiers({ unit: 'web@blue.service' }) },
  );
  t.equal(cfg.image, 'localhost/web:blue');
  t.equal(cfg.containerName, 'app-blue', 'ContainerName= is validated after expansion');
  t.same(cfg.command, ['/bin/run', '--unit', 'web@blue.service', '--home=/home/alice']);
  t.same(cfg.podmanOptions, [
    '--cap-add', 'alice',
    '-v', '/home/alice/data:/data',
    '--env', 'UNIT=web@blue.service',
    '--env', 'WHERE=/run/user/1000/x y',
    '--label', 'unit=web@blue',
    '--health-cmd', 'check blue',
    '--hostname=box',
  ]);
  t.same(cfg.ready, { kind: 'http', path: '/blue/health' });

  // %I of 'web@a\x20b.service' is 'a b': the word it is in stays one word.
  const spaced = load(t, '[Container]\nImage=img\nExec=/bin/echo %I "%I!"\nEnvironment=X=%I\n', { specifiers: fixedSpecifiers({ unit: 'web@a\\x20b.service' }) });
  t.same(spaced.command, ['/bin/echo', 'a b', 'a b!']);
  t.same(spaced.podmanOptions, ['--env', 'X=a b']);
});

void t.test('a relative path that starts with a specifier is not resolved against the file (as Quadlet)', async (t) => {
  const cfg = load(t, '[Container]\nImage=img\nEnvironmentFile=%i.env\nEnvironmentFile=./%i.env\n', { specifiers: fixedSpecifiers({ unit: 'web@blue.service' }) });
  t.same(cfg.podmanOptions, ['--env-file', 'blue.env', '--env-file', join(cfg.dir, 'blue.env')]);
});

void t.test('podsock never expands flags or the passthrough (systemd expanded ExecStart= already)', async (t) => {
  const cfg = load(t, '[Container]\nImage=img\n', { flags: { Mode: 'proxy', Backend: '80', Ready: 'http:/%i' }, extraArgs: ['-e', 'X=%h'] });
  t.same(cfg.ready, { kind: 'http', path: '/%i' });
  t.same(cfg.podmanOptions, ['-e', 'X=%h']);
});

void t.test('an unknown specifier names file, line and key', async (t) => {
  const text = '[Container]\nImage=img\nEnvironment=A=1\nVolume=/x/%z:/y\n';
  const dir = t.testdir({ 'web.container': text });
  const err = caught(() => loadConfig({ name: 'web', env: { PODSOCK_CONFIG_DIR: dir }, uid: 1000, flags: {}, extraArgs: [], specifiers: fixedSpecifiers() }));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(err.message, `${join(dir, 'web.container')}:4: Volume='/x/%z:/y': unknown specifier '%z' (write '%%' for a literal '%'; see systemd.unit(5), "Specifiers")`);
  t.match(err.details, { file: join(dir, 'web.container'), line: 4, key: 'Volume' });
  const exec = caught(() => load(t, '[Container]\nImage=img\nExec=a "b %k"\n'));
  t.match(exec.message, /web\.container:3: Exec='a "b %k"': unknown specifier '%k'/);
});

void t.test('Notify= stands for Ready= when Ready= is not set', async (t) => {
  const proxy = '[Podsock]\nMode=proxy\nBackend=80\n';
  t.same(load(t, `[Container]\nImage=img\nNotify=healthy\nHealthCmd=true\n${proxy}`).ready, { kind: 'healthy' }, 'Notify=healthy');
  t.same(load(t, `[Container]\nImage=img\nNotify=Healthy\n${proxy}`).ready, { kind: 'healthy' }, 'in any case, as Quadlet reads it');
  t.same(load(t, '[Container]\nImage=img\nNotify=yes\n').ready, { kind: 'notify' }, 'Notify=yes');
  t.same(load(t, '[Container]\nImage=img\nNotify=false\n').ready, { kind: 'started' }, 'Notify=false: the default');
  const both = load(t, `[Container]\nImage=img\nNotify=healthy\n${proxy}Ready=tcp\n`);
  t.same(both.ready, { kind: 'tcp' }, 'a Ready= in [Podsock] wins');
  t.equal(both.notify, 'healthy', 'and Notify= is still reported (podsock check warns)');
  t.same(load(t, '[Container]\nImage=img\nNotify=healthy\n', { flags: { Ready: 'notify' } }).ready, { kind: 'notify' }, 'a --ready flag wins');
  const from = load(t, '[Container]\nImage=img\n\nNotify=true\n');
  t.same(from.keyLines['Podsock.Ready'], { file: join(from.dir, 'web.container'), line: 4 }, 'the Ready= it gave is located at Notify=');
});

void t.test('newer Quadlet keys', async (t) => {
  const cfg = load(t, '[Container]\nImage=img\nHttpProxy=false\nStopSignal=SIGINT\nRetry=3\nRetryDelay=5s\nAppArmor=my-profile\n');
  t.same(cfg.podmanOptions, ['--stop-signal', 'SIGINT', '--retry', '3', '--retry-delay', '5s', '--http-proxy=false', '--security-opt', 'apparmor=my-profile']);
  for (const key of ['ReloadCmd=/bin/reload', 'ReloadSignal=SIGHUP']) {
    t.match(caught(() => load(t, `[Container]\nImage=img\n${key}\n`)).message, /ExecReload=podman .* in the \.service file/, key);
  }
});

void t.test('a Notify= that gives a Ready= the mode refuses names Notify=', async (t) => {
  const dir = t.testdir({ 'web.container': '[Container]\nImage=img\nNotify=healthy\n' });
  const err = caught(() => loadConfig({ name: 'web', env: { PODSOCK_CONFIG_DIR: dir }, uid: 1000, flags: {}, extraArgs: [], specifiers: fixedSpecifiers() }));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(
    err.message,
    `${join(dir, 'web.container')}:3: Notify=healthy (Ready=healthy for podsock): readiness 'healthy' needs proxy mode, but the mode is 'handover' (the default); with mode 'handover' use one of 'started', 'notify'`,
  );
});
