import { spawnSync } from 'node:child_process';
import t from 'tap';
import { optionFacts, parsePodmanOptions, parsePodmanRunArgs } from '../../../src/config/podman-args.js';
import { BOOLEAN_OPTIONS, SHORT_OPTIONS, VALUE_OPTIONS } from '../../../src/config/podman-options.js';
import { caught } from '../../helpers/caught.js';

const W = "arguments after '--'";

void t.test('options, image, command', async (t) => {
  const r = parsePodmanRunArgs(['-e', 'A=1', '--env=B=2', '-v', '/a:/b', '--rm', '--read-only', 'img:1', 'sh', '-c', '--rm -d'], W);
  t.same(r.options, ['-e', 'A=1', '--env=B=2', '-v', '/a:/b', '--rm', '--read-only']);
  t.equal(r.image, 'img:1');
  t.same(r.command, ['sh', '-c', '--rm -d']);
  t.equal(r.name, null);
  t.same(r.flags, [
    { name: 'env', value: 'A=1' },
    { name: 'env', value: 'B=2' },
    { name: 'volume', value: '/a:/b' },
    { name: 'rm', value: null },
    { name: 'read-only', value: null },
  ]);
});

void t.test('options after the image belong to the command', async (t) => {
  const r = parsePodmanRunArgs(['img', '--detach', '-d', '--name', 'x'], W);
  t.equal(r.image, 'img');
  t.same(r.command, ['--detach', '-d', '--name', 'x']);
  t.same(r.options, []);
});

void t.test('boolean options never take the next word', async (t) => {
  for (const b of ['--rm', '--privileged', '--init', '--read-only', '-t', '-i', '--tty', '--interactive', '--no-hosts', '--env-host']) {
    const r = parsePodmanRunArgs([b, 'img', 'cmd'], W);
    t.equal(r.image, 'img', b);
    t.same(r.command, ['cmd'], b);
  }
});

void t.test('value options take the next word, whatever it looks like', async (t) => {
  const valueOpts = ['-e', '--env', '-v', '--volume', '-p', '--publish', '--network', '--net', '-u', '--user', '-w', '--workdir',
    '--entrypoint', '--mount', '--label', '-l', '--cap-add', '--cap-drop', '--health-cmd', '--pull', '--memory', '-m', '--tmpfs',
    '--security-opt', '--hostname', '-h', '--ulimit', '--secret', '--dns', '--stop-signal', '--userns', '--platform', '--gpus'];
  for (const o of valueOpts) {
    const r = parsePodmanRunArgs([o, '--rm', 'img', 'cmd'], W);
    t.equal(r.image, 'img', o);
    t.same(r.options, [o, '--rm'], o);
  }
});

void t.test('--opt=value never consumes the next word, also for unknown options', async (t) => {
  const r = parsePodmanRunArgs(['--network=host', '--some-future-option=x', '--rm=true', 'img'], W);
  t.same(r.options, ['--network=host', '--some-future-option=x', '--rm=true']);
  t.equal(r.image, 'img');
  t.same(r.flags, [
    { name: 'network', value: 'host' },
    { name: 'some-future-option', value: 'x' },
    { name: 'rm', value: 'true' },
  ]);
});

void t.test('short option clusters', async (t) => {
  let r = parsePodmanRunArgs(['-it', 'img'], W);
  t.same(r.flags, [{ name: 'interactive', value: null }, { name: 'tty', value: null }]);
  t.equal(r.image, 'img');
  r = parsePodmanRunArgs(['-itp', '8080:80', 'img'], W);
  t.same(r.options, ['-itp', '8080:80']);
  t.same(r.flags, [{ name: 'interactive', value: null }, { name: 'tty', value: null }, { name: 'publish', value: '8080:80' }]);
  t.equal(r.image, 'img');
  r = parsePodmanRunArgs(['-p8080:80', '-eA=b', '-e=C=d', '-t=false', 'img'], W);
  t.same(r.flags, [
    { name: 'publish', value: '8080:80' },
    { name: 'env', value: 'A=b' },
    { name: 'env', value: 'C=d' },
    { name: 'tty', value: 'false' },
  ]);
  t.equal(r.image, 'img');
});

void t.test('-- ends the options', async (t) => {
  const r = parsePodmanRunArgs(['--rm', '--', '-weird-image', 'a', '--b'], W);
  t.same(r.options, ['--rm']);
  t.equal(r.image, '-weird-image');
  t.same(r.command, ['a', '--b']);
  t.equal(parsePodmanRunArgs(['--rm', '--'], W).image, null);
});

void t.test('no image', async (t) => {
  const r = parsePodmanRunArgs(['-e', 'A=1'], W);
  t.equal(r.image, null);
  t.same(r.command, []);
  t.equal(parsePodmanRunArgs([], W).image, null);
});

void t.test('--name is taken out and returned', async (t) => {
  let r = parsePodmanRunArgs(['--name', 'a', '--rm', '--name=b', 'img'], W);
  t.equal(r.name, 'b');
  t.same(r.options, ['--rm']);
  t.same(r.flags, [{ name: 'rm', value: null }]);
  r = parsePodmanRunArgs(['--name', 'solo', 'img'], W);
  t.equal(r.name, 'solo');
  t.same(r.options, []);
});

void t.test('values are kept exactly, never re-joined or unquoted', async (t) => {
  const r = parsePodmanRunArgs(['-e', 'A=$(rm -rf /)', '--label', "x='y z'", 'img', 'sh', '-c', 'echo "$1"\nexit'], W);
  t.same(r.options, ['-e', 'A=$(rm -rf /)', '--label', "x='y z'"]);
  t.same(r.command, ['sh', '-c', 'echo "$1"\nexit']);
});

void t.test('options podsock controls are refused', async (t) => {
  const cases: Array<[string[], string, string]> = [
    [['-d', 'img'], '-d', 'podsock decides how podman runs the container'],
    [['-dit', 'img'], '-dit', 'podsock decides how podman runs the container'],
    [['--detach', 'img'], '--detach', 'podsock decides how podman runs the container'],
    [['--detach=false', 'img'], '--detach=false', 'podsock decides how podman runs the container'],
    [['--cidfile', '/x', 'img'], '--cidfile', 'podsock writes its own container-id file to stop and remove the container'],
    [['--cidfile=/x', 'img'], '--cidfile=/x', 'podsock writes its own container-id file to stop and remove the container'],
    [['--sdnotify=container', 'img'], '--sdnotify=container', 'podsock sets the notify mode itself; choose readiness with Ready= in [Podsock] or --ready'],
    [['--replace', 'img'], '--replace', 'podsock always replaces a leftover container of the same name'],
    [['--preserve-fds', '2', 'img'], '--preserve-fds', 'podsock passes the socket-activation file descriptors itself'],
    [['--preserve-fd=4', 'img'], '--preserve-fd=4', 'podsock passes the socket-activation file descriptors itself'],
    [['--rm=false', 'img'], '--rm=false', 'podsock removes the container when it stops'],
    [['--help'], '--help', 'it would print help instead of running the container'],
  ];
  for (const [args, shown, reason] of cases) {
    const err = caught(() => parsePodmanRunArgs(args, W));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', args.join(' '));
    t.equal(err.message, `${W}: option '${shown}' cannot be used with podsock: ${reason}`);
  }
});

void t.test('malformed arguments', async (t) => {
  const cases: Array<[string[], string]> = [
    [['-e'], `${W}: option '-e' needs a value`],
    [['--env'], `${W}: option '--env' needs a value`],
    [['-ie'], `${W}: option '-e' needs a value`],
    [['-x', 'img'], `${W}: unknown podman run option '-x' in '-x'`],
    [['-itx', 'img'], `${W}: unknown podman run option '-x' in '-itx'`],
    [['--frobnicate', 'img'], `${W}: unknown podman run option '--frobnicate': write it as '--frobnicate=VALUE' (or '--frobnicate=true' for a switch) so that podsock can tell where the image is`],
    [['--=x', 'img'], `${W}: invalid option '--=x'`],
    [['--name', '', 'img'], `${W}: option '--name' needs a container name`],
    [['--name=', 'img'], `${W}: option '--name=' needs a container name`],
  ];
  for (const [args, message] of cases) {
    const err = caught(() => parsePodmanRunArgs(args, W));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', args.join(' '));
    t.equal(err.message, message);
  }
});

void t.test('options-only lists (PodmanArgs=)', async (t) => {
  let r = parsePodmanOptions(['--memory', '512m', '--future-flag', 'value', '--other-future', '--rm'], 'f:3: PodmanArgs');
  t.same(r.options, ['--memory', '512m', '--future-flag', 'value', '--other-future', '--rm']);
  t.same(r.flags, [
    { name: 'memory', value: '512m' },
    { name: 'future-flag', value: 'value' },
    { name: 'other-future', value: null },
    { name: 'rm', value: null },
  ]);
  r = parsePodmanOptions(['--name', 'n1'], 'x');
  t.equal(r.name, 'n1');
  let err = caught(() => parsePodmanOptions(['--rm', 'image'], 'f:3: PodmanArgs'));
  t.equal(err.message, "f:3: PodmanArgs: 'image' is not an option; PodmanArgs= may only contain options (set the image with Image= and the command with Exec=)");
  err = caught(() => parsePodmanOptions(['--', 'x'], 'f:3: PodmanArgs'));
  t.equal(err.message, "f:3: PodmanArgs: '--' ends the options; PodmanArgs= may only contain options");
  err = caught(() => parsePodmanOptions(['--detach'], 'f:3: PodmanArgs'));
  t.equal(err.message, "f:3: PodmanArgs: option '--detach' cannot be used with podsock: podsock decides how podman runs the container");
});

void t.test('facts from the option list', async (t) => {
  const flags = parsePodmanOptions(
    ['-p', '8080:80', '--publish=127.0.0.1::443', '--net', 'mynet', '--network=other', '--pull', 'never', '--pull=always', '--health-cmd', 'true'],
    'x',
  ).flags;
  t.same(optionFacts(flags), { publishPorts: ['8080:80', '127.0.0.1::443'], network: 'mynet', pull: 'always', hasHealthCheck: true });
  t.same(optionFacts([]), { publishPorts: [], network: null, pull: null, hasHealthCheck: false });
  t.equal(optionFacts(parsePodmanOptions(['--health-cmd', 'none'], 'x').flags).hasHealthCheck, false);
  t.equal(optionFacts(parsePodmanOptions(['--health-cmd=NONE'], 'x').flags).hasHealthCheck, false);
  t.equal(optionFacts(parsePodmanOptions(['--health-cmd', 'x', '--no-healthcheck'], 'x').flags).hasHealthCheck, false);
  t.equal(optionFacts(parsePodmanOptions(['--health-cmd', 'x', '--no-healthcheck=false'], 'x').flags).hasHealthCheck, true);
});

const help = spawnSync('podman', ['run', '--help'], { encoding: 'utf8', timeout: 60_000 });

void t.test('the option table matches the installed podman', { skip: help.status === 0 ? false : 'podman is not available' }, async (t) => {
  // "  -e, --env stringArray   Set environment..." / "      --rm   Remove container..."
  const line = /^\s+(?:-([a-zA-Z]), )?--([a-z0-9-]+)(?: (\S+))?/;
  const valueType = /^(strings|string|uint|int|float|stringArray|tmpfs|ARCH|OS|VARIANT|DEVICE_NAME:WEIGHT|\[a-Z\]|<number>\[<unit>\])$/;
  let checked = 0;
  for (const l of help.stdout.split('\n')) {
    const m = line.exec(l);
    if (m === null) continue;
    const [, short, long, type] = m as unknown as [string, string | undefined, string, string | undefined];
    const takesValue = type !== undefined && valueType.test(type);
    t.equal(takesValue ? VALUE_OPTIONS.has(long) : BOOLEAN_OPTIONS.has(long), true, `--${long} ${takesValue ? 'takes a value' : 'is boolean'}`);
    if (short !== undefined) t.equal(SHORT_OPTIONS[short], long, `-${short} is --${long}`);
    checked++;
  }
  t.ok(checked > 100, `checked ${checked} options`);
});
