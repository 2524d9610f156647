import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { defaultContainerName, loadConfig, type LoadOptions, type ServiceConfig } from '../../../src/config/load.js';
import { MAX_UNIT_FILE_BYTES } from '../../../src/config/unit-syntax.js';
import { caught } from '../../helpers/caught.js';

/** A config dir with the given NAME.container files; returns LoadOptions for `name`. */
function setup(t: Test, files: Record<string, string>, name = 'web', extra: Partial<LoadOptions> = {}): LoadOptions & { dir: string } {
  const dir = t.testdir(Object.fromEntries(Object.entries(files).map(([n, body]) => [`${n}.container`, body])));
  return { name, env: { PODSOCK_CONFIG_DIR: dir }, uid: 1000, flags: {}, extraArgs: [], dir, ...extra };
}

const WEB = [
  '[Unit]',
  'Description=web',
  '[Container]',
  'Image=docker.io/library/nginx:1.25',
  'Exec=nginx -g "daemon off;"',
  'Environment="GREETING=hello world" EVIL=$(rm\\s-rf\\s/)',
  'PublishPort=8080:80',
  'HealthCmd=curl -f http://localhost/',
  '[Podsock]',
  'IdleTimeout=10min',
  '[Service]',
  'Restart=on-failure',
  '[Install]',
  'WantedBy=default.target',
  '[X-Custom]',
  'Anything=goes',
].join('\n');

void t.test('a complete file', async (t) => {
  const o = setup(t, { web: WEB });
  const cfg = loadConfig(o);
  const file = join(o.dir, 'web.container');
  t.same(cfg, {
    name: 'web',
    source: file,
    files: [file],
    notify: null,
    containerName: 'podsock-web',
    image: 'docker.io/library/nginx:1.25',
    command: ['nginx', '-g', 'daemon off;'],
    podmanOptions: ['--publish', '8080:80', '--env', 'GREETING=hello world', '--env', 'EVIL=$(rm -rf /)', '--health-cmd', 'curl -f http://localhost/'],
    mode: 'handover',
    ready: { kind: 'started' },
    idleTimeoutMs: 600_000,
    startTimeoutMs: 90_000,
    stopTimeoutMs: 10_000,
    backends: [],
    maxConnections: 4096,
    connectionIdleTimeoutMs: null,
    proxyProtocol: [],
    flowTimeoutMs: 30_000,
    maxFlows: 1024,
    hasHealthCheck: true,
    publishPorts: ['8080:80'],
    network: null,
    pull: null,
    autoUpdate: null,
    keyLines: {
      'Container.Image': { file, line: 4 },
      'Container.Exec': { file, line: 5 },
      'Container.Environment': { file, line: 6 },
      'Container.PublishPort': { file, line: 7 },
      'Container.HealthCmd': { file, line: 8 },
      'Podsock.IdleTimeout': { file, line: 10 },
    },
  } satisfies ServiceConfig);
});

void t.test('the result is deeply frozen', async (t) => {
  const cfg = loadConfig(setup(t, { web: WEB }));
  t.equal(Object.isFrozen(cfg), true);
  t.equal(Object.isFrozen(cfg.podmanOptions), true);
  t.equal(Object.isFrozen(cfg.ready), true);
  t.equal(Object.isFrozen(cfg.keyLines['Container.Image']), true);
  t.throws(() => (cfg.podmanOptions as string[]).push('--privileged'));
});

void t.test('passthrough options are appended; its image and command replace Image= and Exec=', async (t) => {
  let cfg = loadConfig(setup(t, { web: WEB }, 'web', { extraArgs: ['-e', 'X=1', '--network=none', '-p', '9090:90'] }));
  t.equal(cfg.image, 'docker.io/library/nginx:1.25');
  t.same(cfg.command, ['nginx', '-g', 'daemon off;']);
  t.same(cfg.podmanOptions.slice(-5), ['-e', 'X=1', '--network=none', '-p', '9090:90']);
  t.same(cfg.publishPorts, ['8080:80', '9090:90']);
  t.equal(cfg.network, 'none');

  cfg = loadConfig(setup(t, { web: WEB }, 'web', { extraArgs: ['--pull=never', 'localhost/other:2', 'serve', '--port', '80'] }));
  t.equal(cfg.image, 'localhost/other:2');
  t.same(cfg.command, ['serve', '--port', '80']);
  t.equal(cfg.pull, 'never');

  cfg = loadConfig(setup(t, { web: WEB }, 'web', { extraArgs: ['localhost/other:2'] }));
  t.same(cfg.command, [], 'a passthrough image without a command drops Exec=');
});

void t.test('container name: default, ContainerName=, PodmanArgs --name, passthrough --name', async (t) => {
  t.equal(loadConfig(setup(t, { web: '[Container]\nImage=i\n' })).containerName, 'podsock-web');
  t.equal(loadConfig(setup(t, { 'web@1': '[Container]\nImage=i\n' }, 'web@1')).containerName, 'podsock-web_1');
  t.equal(defaultContainerName('a@b@c'), 'podsock-a_b_c');
  t.equal(loadConfig(setup(t, { web: '[Container]\nImage=i\nContainerName=mine\n' })).containerName, 'mine');
  t.equal(loadConfig(setup(t, { web: '[Container]\nImage=i\nContainerName=mine\nPodmanArgs=--name=other\n' })).containerName, 'other');
  const cfg = loadConfig(setup(t, { web: '[Container]\nImage=i\nContainerName=mine\n' }, 'web', { extraArgs: ['--name', 'cli'] }));
  t.equal(cfg.containerName, 'cli');
  t.same(cfg.podmanOptions, []);
  const err = caught(() => loadConfig(setup(t, { web: '[Container]\nImage=i\n' }, 'web', { extraArgs: ['--name', '/bad'] })));
  t.equal(err.message, "arguments after '--': invalid container name '/bad' in '--name'");
});

void t.test('flags win over [Podsock]', async (t) => {
  const cfg = loadConfig(
    setup(t, { web: '[Container]\nImage=i\n[Podsock]\nMode=handover\nIdleTimeout=1min\n' }, 'web', {
      flags: { Mode: 'proxy', Backend: 'web=8080', Ready: 'http:/ready', IdleTimeout: 'infinity', MaxConnections: '7' },
    }),
  );
  t.equal(cfg.mode, 'proxy');
  t.same(cfg.backends, [{ name: 'web', port: 8080 }]);
  t.same(cfg.ready, { kind: 'http', path: '/ready' });
  t.equal(cfg.idleTimeoutMs, null);
  t.equal(cfg.maxConnections, 7);
});

void t.test('passthrough only, without a file', async (t) => {
  const o = setup(t, {}, 'adhoc', { extraArgs: ['--rm', '-v', '/a:/b', 'alpine', 'sleep', '1'] });
  const cfg = loadConfig(o);
  t.equal(cfg.source, null);
  t.equal(cfg.image, 'alpine');
  t.same(cfg.command, ['sleep', '1']);
  t.same(cfg.podmanOptions, ['--rm', '-v', '/a:/b']);
  t.same(cfg.keyLines, {});
  t.equal(cfg.containerName, 'podsock-adhoc');
  const err = caught(() => loadConfig(setup(t, {}, 'adhoc', { extraArgs: ['--rm'] })));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(err.message, "arguments after '--': no image given (expected podman run arguments: [OPTIONS] IMAGE [COMMAND...])");
});

void t.test('an image that podman would read as an option is refused; command words may start with a dash', async (t) => {
  const err = caught(() => loadConfig(setup(t, {}, 'adhoc', { extraArgs: ['--rm', '--', '--privileged', 'sh'] })));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(err.message, "arguments after '--': image '--privileged' starts with '-': podman would read it as an option; expected an image name such as 'docker.io/library/nginx:latest'");
  const empty = caught(() => loadConfig(setup(t, {}, 'adhoc', { extraArgs: ['--', ''] })));
  t.equal(empty.message, "arguments after '--': the image is empty; expected an image name such as 'docker.io/library/nginx:latest'");
  const cfg = loadConfig(setup(t, { web: '[Container]\nImage=i\nExec=--port 80\n' }));
  t.same(cfg.command, ['--port', '80'], 'podman passes every word after the image to the container');
});

void t.test('--config FILE', async (t) => {
  const dir = t.testdir({ 'elsewhere.conf': '[Container]\nImage=from-config\n' });
  const cfg = loadConfig({ name: 'web', configFile: join(dir, 'elsewhere.conf'), env: {}, uid: 0, flags: {}, extraArgs: [] });
  t.equal(cfg.image, 'from-config');
  t.equal(cfg.source, join(dir, 'elsewhere.conf'));
  const missing = join(dir, 'missing.container');
  const err = caught(() => loadConfig({ name: 'web', configFile: missing, env: {}, uid: 0, flags: {}, extraArgs: [] }));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG_NOT_FOUND');
  t.equal(err.message, `Configuration file '${missing}' (from --config) does not exist`);
  const isDir = caught(() => loadConfig({ name: 'web', configFile: dir, env: {}, uid: 0, flags: {}, extraArgs: [] }));
  t.equal(isDir.code, 'PODSOCK_ERR_CONFIG');
  t.match(isDir.message, new RegExp(`^Cannot read configuration file '${dir}': EISDIR`));
});

void t.test('not found names every place looked', async (t) => {
  const dir = t.testdir({});
  const home = t.testdir({});
  const err = caught(() => loadConfig({ name: 'web', env: { PODSOCK_CONFIG_DIR: dir, HOME: home }, uid: 1000, flags: {}, extraArgs: [] }));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG_NOT_FOUND');
  t.equal(
    err.message,
    `No configuration for 'web': looked for '${dir}/web.container', '${home}/.config/podsock/web.container'; create one of these, use --config FILE, or give podman run arguments after '--'`,
  );
  const none = caught(() => loadConfig({ name: 'web', env: {}, uid: 1000, flags: {}, extraArgs: [] }));
  t.equal(
    none.message,
    "No configuration for 'web': there is no directory to look in (PODSOCK_CONFIG_DIR is unset and neither XDG_CONFIG_HOME nor HOME is an absolute path); create one of these, use --config FILE, or give podman run arguments after '--'",
  );
});

void t.test('errors', async (t) => {
  const cases: Array<[Record<string, string>, Partial<LoadOptions>, string, (file: string) => string]> = [
    [{ web: '[Container]\nExec=x\n' }, {}, 'PODSOCK_ERR_CONFIG', (f) => `${f}:1: Image= is required in section [Container] (or give the image after '--')`],
    [{ web: '[Podsock]\nMode=handover\n' }, {}, 'PODSOCK_ERR_CONFIG', (f) => `${f}: Image= is required in section [Container] (or give the image after '--')`],
    [{ web: '[Container]\nImage=i\n[Contianer]\nX=1\n' }, {}, 'PODSOCK_ERR_CONFIG', (f) => `${f}:3: unknown section [Contianer] (podsock reads [Container] and [Podsock]; [Unit], [Service], [Install] and [X-...] are ignored)`],
    [{ web: '[Container]\nImage=i\nBogus=1\n' }, {}, 'PODSOCK_ERR_CONFIG', (f) => `${f}:3: unknown key 'Bogus' in section [Container]: see podman-systemd.unit(5) for the [Container] keys; PodmanArgs= passes any other podman run option`],
    [{ web: '[Container]\nImage=i\n[Podsock]\nIdleTimeout=forever\n' }, {}, 'PODSOCK_ERR_TIMESPAN', (f) => `${f}:4: Invalid time span for IdleTimeout: 'forever' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    [{ web: '[Container]\nImage=i\n' }, { flags: { IdleTimeout: 'forever' } }, 'PODSOCK_ERR_TIMESPAN', () => `Invalid time span for --idle-timeout: 'forever' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    [{ web: '[Container]\nImage=i\n[Podsock]\nReady=tcp\n' }, {}, 'PODSOCK_ERR_CONFIG', (f) => `${f}:4: Ready: readiness 'tcp' needs proxy mode, but the mode is 'handover' (the default); with mode 'handover' use one of 'started', 'notify'`],
    [{ web: '[Container]\nImage=i\n' }, { extraArgs: ['--detach', 'img'] }, 'PODSOCK_ERR_CONFIG', () => `arguments after '--': option '--detach' cannot be used with podsock: podsock decides how podman runs the container`],
    [{ web: 'Image=i\n' }, {}, 'PODSOCK_ERR_CONFIG', (f) => `${f}:1: assignment 'Image=i' is outside of any section (add a section header such as '[Container]' first)`],
  ];
  for (const [files, extra, code, message] of cases) {
    const o = setup(t, files, 'web', extra);
    const file = join(o.dir, 'web.container');
    const err = caught(() => loadConfig(o));
    t.equal(err.code, code, message(file));
    t.equal(err.message, message(file));
  }
});

void t.test('unsafe names are refused before any lookup', async (t) => {
  const err = caught(() => loadConfig({ name: 'a/b', env: {}, uid: 0, flags: {}, extraArgs: ['img'] }));
  t.equal(err.code, 'PODSOCK_ERR_USAGE');
});

void t.test('file size limit is enforced while reading', async (t) => {
  const o = setup(t, {});
  writeFileSync(join(o.dir, 'web.container'), `[Container]\nImage=i\n#${'x'.repeat(MAX_UNIT_FILE_BYTES)}\n`);
  const err = caught(() => loadConfig(o));
  t.equal(err.message, `${join(o.dir, 'web.container')}: file is larger than ${MAX_UNIT_FILE_BYTES} bytes`);
});

void t.test('values keep shell metacharacters and newlines as single argv elements', async (t) => {
  const cfg = loadConfig(
    setup(t, { web: '[Container]\nImage=i\nEnvironment="A=$(id)" "B=line1\\nline2" C=\'x;y|z\'\nExec=sh -c "echo $A && echo \\"$B\\""\n' }),
  );
  t.same(cfg.podmanOptions, ['--env', 'A=$(id)', '--env', 'B=line1\nline2', '--env', 'C=x;y|z']);
  t.same(cfg.command, ['sh', '-c', 'echo $A && echo "$B"']);
});
