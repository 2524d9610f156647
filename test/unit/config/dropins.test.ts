import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MAX_DROPINS, dropinDirs, dropinNames, findDropins } from '../../../src/config/dropins.js';
import { loadConfig, type LoadOptions } from '../../../src/config/load.js';
import { caught } from '../../helpers/caught.js';
import { fixedSpecifiers } from '../../helpers/specifiers.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

/** Writes `files` (path relative to root -> text) under a new temporary directory; returns it. */
function tree(t: Test, files: Record<string, string>): string {
  const root = tmpDir(t, 'podsock-dropins-');
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

function opts(root: string, name = 'web', extra: Partial<LoadOptions> = {}): LoadOptions {
  // PODSOCK_CONFIG_DIR (first) and $XDG_CONFIG_HOME/podsock (second) are the search directories.
  return { name, env: { PODSOCK_CONFIG_DIR: join(root, 'a'), XDG_CONFIG_HOME: join(root, 'xdg') }, uid: 1000, flags: {}, extraArgs: [], specifiers: fixedSpecifiers(), ...extra };
}

const MAIN = '[Container]\nImage=img\nEnvironment=A=main\nPublishPort=1:1\n[Podsock]\nIdleTimeout=1min\n';

void t.test('drop-ins apply in lexical order across directories; lists add up, an empty value resets, the last single value wins', async (t) => {
  const root = tree(t, {
    'xdg/podsock/web.container': MAIN,
    'xdg/podsock/web.container.d/20-ports.conf': '[Container]\nPublishPort=\nPublishPort=2:2\n',
    'a/web.container.d/10-env.conf': '[Container]\nEnvironment=B=ten\n[Podsock]\nIdleTimeout=10min\n',
    'xdg/podsock/web.container.d/30-env.conf': '[Container]\nEnvironment=A=thirty\nPublishPort=3:3\n[Podsock]\nIdleTimeout=30min\n',
    'xdg/podsock/web.container.d/notes.txt': '[Container]\nImage=not-a-drop-in\n',
  });
  const cfg = loadConfig(opts(root));
  const x = join(root, 'xdg/podsock');
  t.same(cfg.files, [join(x, 'web.container'), join(root, 'a/web.container.d/10-env.conf'), join(x, 'web.container.d/20-ports.conf'), join(x, 'web.container.d/30-env.conf')]);
  t.same(cfg.publishPorts, ['2:2', '3:3'], 'the reset in 20 drops 1:1, 30 adds 3:3');
  t.same(cfg.podmanOptions.filter((o) => o.includes('=') && !o.includes(':')), ['A=main', 'B=ten', 'A=thirty'], 'environment accumulates in order');
  t.equal(cfg.idleTimeoutMs, 30 * 60_000, 'the last IdleTimeout= wins');
  t.same(cfg.keyLines['Podsock.IdleTimeout'], { file: join(x, 'web.container.d/30-env.conf'), line: 5 });
  t.same(cfg.keyLines['Container.Image'], { file: join(x, 'web.container'), line: 2 });
});

void t.test('a drop-in in a higher-priority directory hides one of the same name; /dev/null masks', async (t) => {
  const root = tree(t, {
    'xdg/podsock/web.container': MAIN,
    'xdg/podsock/web.container.d/50-x.conf': '[Container]\nEnvironment=FROM=xdg\n',
    'a/web.container.d/50-x.conf': '[Container]\nEnvironment=FROM=a\n',
    'xdg/podsock/web.container.d/60-masked.conf': '[Container]\nEnvironment=MASKED=yes\n',
  });
  symlinkSync('/dev/null', join(root, 'a/web.container.d/60-masked.conf'));
  const cfg = loadConfig(opts(root));
  t.same(cfg.podmanOptions.filter((o) => /^[A-Z]+=/.test(o)), ['A=main', 'FROM=a']);
  t.same(cfg.files, [join(root, 'xdg/podsock/web.container'), join(root, 'a/web.container.d/50-x.conf')]);
});

void t.test("an instance also reads the template's drop-ins, after its own of the same name", async (t) => {
  const root = tree(t, {
    'a/web@blue.container': MAIN,
    'a/web@.container.d/10-all.conf': '[Container]\nEnvironment=T=template\n',
    'a/web@.container.d/20-same.conf': '[Container]\nEnvironment=S=template\n',
    'a/web@blue.container.d/20-same.conf': '[Container]\nEnvironment=S=instance\n',
  });
  t.same(dropinDirs(join(root, 'a/web@blue.container'), [join(root, 'a')]), [join(root, 'a/web@blue.container.d'), join(root, 'a/web@.container.d'), join(root, 'a/container.d')]);
  const cfg = loadConfig(opts(root, 'web@blue'));
  t.same(cfg.podmanOptions.filter((o) => /^[A-Z]+=/.test(o)), ['A=main', 'T=template', 'S=instance']);
});

void t.test('with --config, only the drop-ins beside that file', async (t) => {
  const root = tree(t, {
    'elsewhere/other.container': MAIN,
    'elsewhere/other.container.d/1.conf': '[Container]\nEnvironment=BESIDE=1\n',
    'a/web.container.d/1.conf': '[Container]\nEnvironment=SEARCH=1\n',
  });
  const cfg = loadConfig(opts(root, 'web', { configFile: join(root, 'elsewhere/other.container') }));
  t.same(cfg.podmanOptions.filter((o) => /^[A-Z]+=/.test(o)), ['A=main', 'BESIDE=1']);
});

void t.test('errors in a drop-in name the drop-in and its line', async (t) => {
  const cases: Array<[string, string]> = [
    ['[Container]\nReadOnly=maybe\n', ":2: invalid boolean 'maybe' for ReadOnly"],
    ['[Container]\nBogus=1\n', ":2: unknown key 'Bogus' in section [Container]"],
    ['[Podsock]\n\nFrobnicate=1\n', ":3: unknown key 'Frobnicate' in section [Podsock]"],
    ['[Podsock]\nIdleTimeout=%x\n', ":2: IdleTimeout='%x': unknown specifier '%x'"],
    ['[Container]\nEnvironment=A=%Q\n', ":2: Environment='A=%Q': unknown specifier '%Q'"],
    ['[Nope]\nA=1\n', ':1: unknown section [Nope]'],
    ['Image=x\n', ":1: assignment 'Image=x' is outside of any section"],
  ];
  for (const [text, message] of cases) {
    const root = tree(t, { 'a/web.container': MAIN, 'a/web.container.d/10-bad.conf': text });
    const err = caught(() => loadConfig(opts(root)));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', text);
    t.ok(err.message.startsWith(`${join(root, 'a/web.container.d/10-bad.conf')}${message}`), err.message);
  }
});

void t.test('drop-in limits and unreadable directories', async (t) => {
  const files: Record<string, string> = { 'a/web.container': MAIN };
  for (let i = 0; i <= MAX_DROPINS; i++) files[`a/web.container.d/${String(i).padStart(3, '0')}.conf`] = '';
  const root = tree(t, files);
  t.match(caught(() => findDropins(join(root, 'a/web.container'), [join(root, 'a')])).message, `More than ${MAX_DROPINS} drop-ins`);
  const fileNotDir = tree(t, { 'a/web.container': MAIN, 'a/web.container.d': 'not a directory' });
  t.same(findDropins(join(fileNotDir, 'a/web.container'), [join(fileNotDir, 'a')]), []);
});

void t.test("Quadlet's drop-in directories: most specific first, then dash prefixes, then container.d", async (t) => {
  t.same(dropinNames('web.container'), ['web.container.d', 'container.d']);
  t.same(dropinNames('my-app-x.container'), ['my-app-x.container.d', 'my-app-.container.d', 'my-.container.d', 'container.d']);
  t.same(dropinNames('my-app@blue-sky.container'), ['my-app@blue-sky.container.d', 'my-app@.container.d', 'my-@.container.d', 'my-.container.d', 'container.d']);
  t.same(dropinNames('web@.container'), ['web@.container.d', 'container.d']);
  t.same(dropinDirs('/x/a-b.container', ['/d1', '/d2']), ['/d1/a-b.container.d', '/d2/a-b.container.d', '/d1/a-.container.d', '/d2/a-.container.d', '/d1/container.d', '/d2/container.d']);

  const root = tree(t, {
    'a/my-app.container': MAIN,
    'a/container.d/10-all.conf': '[Container]\nEnvironment=ALL=1 SAME=broad\n',
    'a/container.d/30-same.conf': '[Container]\nEnvironment=HIDDEN=1\n',
    'xdg/podsock/my-.container.d/20-prefix.conf': '[Container]\nEnvironment=PREFIX=1\n',
    'xdg/podsock/my-app.container.d/30-same.conf': '[Container]\nEnvironment=SAME=specific\n',
  });
  const cfg = loadConfig(opts(root, 'my-app'));
  t.same(cfg.podmanOptions.filter((o) => /^[A-Z]+=/.test(o)), ['A=main', 'ALL=1', 'SAME=broad', 'PREFIX=1', 'SAME=specific'], 'a more specific directory wins a name even in a lower-priority search directory');
});
