import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { autoUpdateCommand, configuredNames, formatTable } from '../../../src/cli/auto-update.js';

void t.test('without NAME: every NAME.container of the configuration directories, templates left out, the first directory winning a name', async (t) => {
  const root = t.testdir({
    own: { 'b.container': '', 'a.container': '', 'web@.container': '', 'notes.txt': '' },
    home: { podsock: { 'a.container': '', 'c.container': '' } },
  });
  t.same(configuredNames({ PODSOCK_CONFIG_DIR: join(root, 'own'), XDG_CONFIG_HOME: join(root, 'home') }, 1000), ['a', 'b', 'c']);
  t.same(configuredNames({ PODSOCK_CONFIG_DIR: join(root, 'missing'), HOME: '/nonexistent' }, 1000), [], 'directories that do not exist');
});

void t.test('the table: a header, padded columns, the message last', async (t) => {
  t.equal(
    formatTable([
      { service: 'web', image: 'quay.io/a/web:1', policy: 'registry', status: 'updated', message: 'image b replaced a', imageId: 'b' },
      { service: 'api-long', image: 'x', policy: null, status: 'failed', message: 'bad', imageId: null },
    ]),
    [
      'SERVICE   IMAGE            POLICY    STATUS   MESSAGE',
      'web       quay.io/a/web:1  registry  updated  image b replaced a',
      'api-long  x                -         failed   bad',
      '',
    ].join('\n'),
  );
});

void t.test('usage errors name the problem', async (t) => {
  const run = (argv: string[]): Promise<number> => autoUpdateCommand({ argv, env: {}, uid: 1000, stdout: () => undefined });
  await t.rejects(run(['--bogus']), { code: 'PODSOCK_ERR_USAGE', message: /unknown option '--bogus'/ });
  await t.rejects(run(['--', 'x']), { code: 'PODSOCK_ERR_USAGE', message: "podsock auto-update: unexpected arguments after '--' (see 'podsock auto-update --help')" });
  await t.rejects(run(['--log-level', 'loud']), { code: 'PODSOCK_ERR_USAGE', message: /Invalid --log-level 'loud'/ });
});

void t.test('a named service that does not load is a failed row, not a crash, and the exit status says so', async (t) => {
  const dir = t.testdir({});
  mkdirSync(join(dir, 'cfg'));
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  writeFileSync(join(dir, 'cfg', 'bad.container'), '[Container]\nImage=app\nAutoUpdate=always\n');
  let out = '';
  const code = await autoUpdateCommand({
    argv: ['bad', '--json'],
    env: { PODSOCK_CONFIG_DIR: join(dir, 'cfg'), XDG_RUNTIME_DIR: join(dir, 'run'), PODSOCK_PODMAN: '/bin/true', PATH: '/usr/bin:/bin' },
    uid: 1000,
    stdout: (text) => (out += text),
  });
  t.equal(code, 1);
  t.match(JSON.parse(out), [{ service: 'bad', status: 'failed', message: /bad\.container:3: invalid value 'always' for AutoUpdate=/ }]);
});
