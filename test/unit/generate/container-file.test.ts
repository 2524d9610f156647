import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig, type ServiceConfig } from '../../../src/config/load.js';
import { parsePodmanOptions } from '../../../src/config/podman-args.js';
import { resolvePodsockSettings } from '../../../src/config/podsock-section.js';
import { containerFileText } from '../../../src/generate/container-file.js';
import { optionsToKeys } from '../../../src/generate/container-keys.js';

/** The options podman sees, grouped by option in order: what must survive the round trip. */
function byOption(options: readonly string[]): Record<string, Array<string | null>> {
  const out: Record<string, Array<string | null>> = {};
  for (const f of parsePodmanOptions(options, 'test').flags) (out[f.name] ??= []).push(f.value);
  return out;
}

function viaPassthrough(args: string[], flags: Record<string, string> = {}): ServiceConfig {
  return loadConfig({ name: 'svc', env: { PODSOCK_CONFIG_DIR: '/nonexistent' }, uid: 1000, flags, extraArgs: args });
}

function viaGenerated(t: Test, args: string[], flags: Record<string, string> = {}): { cfg: ServiceConfig; text: string } {
  const text = containerFileText({ name: 'svc', podmanArgs: args, settings: resolvePodsockSettings(undefined, null, flags), header: ['test'] });
  const dir = t.testdir({});
  const file = join(dir, 'svc.container');
  writeFileSync(file, text);
  return { cfg: loadConfig({ name: 'svc', configFile: file, env: {}, uid: 1000, flags: {}, extraArgs: [] }), text };
}

const CASES: Array<{ name: string; args: string[]; flags?: Record<string, string> }> = [
  { name: 'image only', args: ['docker.io/library/nginx:1.25'] },
  {
    name: 'the fixture as the e2e tests run it',
    args: ['-v', '/usr:/usr:ro', '--network', 'none', '--pull=never', '-e', 'FIXTURE_NAME=x', 'localhost/podsock-fixture:latest'],
  },
  {
    name: 'many kinds of options, clusters and a command with awkward words',
    args: [
      '-it', '-p8080:80', '-p', '127.0.0.1:8443:443', '--env', 'A=b c', '-e=Q="quoted"', '--env', 'INHERIT',
      '--label', 'x=y z', '--cap-add', 'NET_ADMIN', '--cap-drop', 'all', '--read-only', '--init=false',
      '--security-opt', 'label=disable', '--memory', '512m', '--memory', '1g', '--user', '1000:1000', '--tmpfs', '/run',
      '--mount', 'type=bind,source=./rel,target=/d', '--volume', './data:/data', '--volume', 'named:/x', '--hostname', 'h',
      '--health-cmd', 'curl -f http://localhost/ || exit 1', '--name', 'custom-name', '--dns', '1.1.1.1',
      '--unknown-opt=v', '-e', 'SPEC=%h/%n %% %i', '--label', 'pct=50%', 'img:1', 'sh', '-c', 'echo "$HOME" 100% \\ done %I', '',
    ],
  },
  { name: 'proxy mode settings', args: ['--network=bridge', 'img'], flags: { Mode: 'proxy', Backend: 'web=8080 admin=9000', Ready: 'http:/health%20z', IdleTimeout: 'infinity', MaxConnections: '10' } },
];

void t.test('round trip: generate -> loadConfig gives what `run -- ARGS` would run', async (t) => {
  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      const direct = viaPassthrough(c.args, c.flags);
      const { cfg, text } = viaGenerated(t, c.args, c.flags);
      t.equal(cfg.image, direct.image, 'image');
      t.same(cfg.command, direct.command, 'command');
      t.equal(cfg.containerName, direct.containerName, 'container name');
      t.same(byOption(cfg.podmanOptions), byOption(direct.podmanOptions), 'options, in order per option');
      for (const k of ['mode', 'ready', 'idleTimeoutMs', 'startTimeoutMs', 'stopTimeoutMs', 'backends', 'maxConnections'] as const) {
        t.same(cfg[k], direct[k], k);
      }
      t.notOk(/^PodmanArgs=--(publish|env)=/m.test(text) && c.name === 'image only', 'no needless PodmanArgs');
    });
  }
});

void t.test('the text: keys where there are keys, PodmanArgs= for the rest, comments', async (t) => {
  const text = containerFileText({
    name: 'web',
    podmanArgs: ['-p', '8080:80', '--env', 'A=b c', '--memory', '1g', '--memory', '2g', '--security-opt', 'label=disable', '-v', './d:/d', 'img', 'run', 'a b'],
    settings: resolvePodsockSettings(undefined, null, { IdleTimeout: '90s' }),
    header: ['line one', ''],
  });
  t.equal(
    text,
    [
      '# line one',
      '#',
      '',
      '[Container]',
      'Image=img',
      'Exec=run "a b"',
      'PublishPort=8080:80',
      'Environment="A=b c"',
      '# Options without a [Container] key, passed to podman run as they are.',
      'PodmanArgs=--memory=1g',
      'PodmanArgs=--memory=2g',
      'PodmanArgs=--security-opt=label=disable',
      'PodmanArgs=--volume=./d:/d',
      '',
      '[Podsock]',
      '# handover: the container gets the listening sockets itself (LISTEN_FDS); it needs no network.',
      'Mode=handover',
      '# Ready as soon as the container runs (use notify for an app that sends READY=1).',
      'Ready=started',
      "# Stop the container (and podsock) after this long without connections; 'infinity' never does.",
      'IdleTimeout=1min 30s',
      '# The container must be ready within this, or the start fails.',
      'StartTimeout=1min 30s',
      '# `podman stop` gives the container this long before it is killed.',
      'StopTimeout=10s',
      '',
    ].join('\n'),
  );
});

void t.test('optionsToKeys: an option is mapped only when all of its occurrences are', async (t) => {
  const flags = parsePodmanOptions(['--env', 'A=1', '--env', 'B', '--publish', '1:2', '--init', '--init=yes'], 'test').flags;
  t.same(optionsToKeys(flags), {
    lines: [{ key: 'PublishPort', value: '1:2' }],
    podmanArgs: ['--env=A=1', '--env=B', '--init', '--init=yes'],
  });
});

void t.test('errors: no image, an image Image= cannot hold, refused options', async (t) => {
  const settings = resolvePodsockSettings(undefined, null, {});
  const gen = (args: string[]): unknown => containerFileText({ name: 'x', podmanArgs: args, settings, header: [] });
  t.throws(() => gen(['--rm']), { code: 'PODSOCK_ERR_USAGE', message: /no image/ });
  t.throws(() => gen(['web.image']), { code: 'PODSOCK_ERR_USAGE', message: "podsock generate: cannot write image 'web.image' as Image= in a .container file" });
  t.throws(() => gen(['--cidfile', '/x', 'img']), {
    code: 'PODSOCK_ERR_CONFIG',
    message: "arguments after '--': option '--cidfile' cannot be used with podsock: podsock writes its own container-id file to stop and remove the container",
  });
});
