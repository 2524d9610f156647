import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { assertSafeName, configCandidates, configSearchDirs, findConfigFile } from '../../../src/config/find.js';
import { caught } from '../../helpers/caught.js';

void t.test('search directories', async (t) => {
  t.same(configSearchDirs({}, 0), ['/etc/podsock']);
  t.same(configSearchDirs({ HOME: '/root' }, 0), ['/etc/podsock']);
  t.same(configSearchDirs({ HOME: '/home/u' }, 1000), ['/home/u/.config/podsock']);
  t.same(configSearchDirs({ HOME: '/home/u', XDG_CONFIG_HOME: '/xdg' }, 1000), ['/xdg/podsock']);
  t.same(configSearchDirs({ HOME: '/home/u', XDG_CONFIG_HOME: 'relative' }, 1000), ['/home/u/.config/podsock']);
  t.same(configSearchDirs({ HOME: 'relative' }, 1000), []);
  t.same(configSearchDirs({}, 1000), []);
  t.same(configSearchDirs({ PODSOCK_CONFIG_DIR: '/opt/cfg', HOME: '/home/u' }, 1000), ['/opt/cfg', '/home/u/.config/podsock']);
  t.same(configSearchDirs({ PODSOCK_CONFIG_DIR: '/opt/cfg' }, 0), ['/opt/cfg', '/etc/podsock']);
  t.same(configSearchDirs({ PODSOCK_CONFIG_DIR: '' }, 0), ['/etc/podsock']);
  const err = caught(() => configSearchDirs({ PODSOCK_CONFIG_DIR: 'cfg' }, 0));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(err.message, "PODSOCK_CONFIG_DIR must be an absolute path, got 'cfg'");
});

void t.test('candidates are NAME.container in each directory', async (t) => {
  t.same(configCandidates('web', { PODSOCK_CONFIG_DIR: '/a' }, 0), ['/a/web.container', '/etc/podsock/web.container']);
});

void t.test('safe names', async (t) => {
  for (const n of ['web', 'web-1', 'web_1', 'web.v2', 'web@1', 'a', 'x'.repeat(200)]) {
    t.doesNotThrow(() => assertSafeName(n), n);
  }
  for (const n of ['', 'a/b', '../etc', '/abs', 'a b', 'a\nb', 'caf\u00e9', '.', '..', 'x'.repeat(201), 'a:b', 'a*']) {
    const err = caught(() => assertSafeName(n));
    t.equal(err.code, 'PODSOCK_ERR_USAGE', JSON.stringify(n));
    t.match(err.message, /^Invalid service name '.*': use 1 to 200 letters, digits, '_', '\.', '@' or '-' \(no '\/'\)$/s);
  }
  t.equal(caught(() => assertSafeName('a/b')).message, "Invalid service name 'a/b': use 1 to 200 letters, digits, '_', '.', '@' or '-' (no '/')");
});

void t.test('lookup order with real directories', async (t) => {
  const root = t.testdir({ override: {}, xdg: { podsock: {} }, home: { '.config': { podsock: {} } } });
  const env = { PODSOCK_CONFIG_DIR: join(root, 'override'), XDG_CONFIG_HOME: join(root, 'xdg'), HOME: join(root, 'home') };
  t.equal(findConfigFile('web', env, 1000), null);

  const inXdg = join(root, 'xdg', 'podsock', 'web.container');
  writeFileSync(inXdg, '[Container]\nImage=x\n');
  t.equal(findConfigFile('web', env, 1000), inXdg);

  const inOverride = join(root, 'override', 'web.container');
  writeFileSync(inOverride, '[Container]\nImage=y\n');
  t.equal(findConfigFile('web', env, 1000), inOverride, 'PODSOCK_CONFIG_DIR first');

  // HOME is used only without XDG_CONFIG_HOME.
  const inHome = join(root, 'home', '.config', 'podsock', 'api.container');
  writeFileSync(inHome, '[Container]\nImage=z\n');
  t.equal(findConfigFile('api', env, 1000), null);
  t.equal(findConfigFile('api', { HOME: join(root, 'home') }, 1000), inHome);

  t.equal(findConfigFile('other', env, 1000), null);
});

void t.test('directories and dangling symlinks are not configuration files', async (t) => {
  const root = t.testdir({});
  mkdirSync(join(root, 'web.container'));
  symlinkSync(join(root, 'missing'), join(root, 'api.container'));
  t.equal(findConfigFile('web', { PODSOCK_CONFIG_DIR: root }, 1000), null);
  t.equal(findConfigFile('api', { PODSOCK_CONFIG_DIR: root }, 1000), null);
  writeFileSync(join(root, 'target'), '[Container]\nImage=x\n');
  symlinkSync(join(root, 'target'), join(root, 'ok.container'));
  t.equal(findConfigFile('ok', { PODSOCK_CONFIG_DIR: root }, 1000), join(root, 'ok.container'));
});

void t.test('an unsafe name never touches the file system', async (t) => {
  t.equal(caught(() => findConfigFile('../../etc/passwd', { PODSOCK_CONFIG_DIR: '/tmp' }, 0)).code, 'PODSOCK_ERR_USAGE');
});
