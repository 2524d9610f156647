import t from 'tap';
import {
  MAX_EXPANDED_LENGTH,
  SPECIFIERS,
  SpecifierError,
  expandSpecifiers,
  unitNameParts,
  unitNamePathUnescape,
  unitNameUnescape,
} from '../../../src/config/specifiers.js';
import { fixedSpecifiers } from '../../helpers/specifiers.js';

const ctx = fixedSpecifiers();

function refused(text: string, c = ctx): SpecifierError {
  try {
    expandSpecifiers(text, c);
  } catch (err) {
    if (err instanceof SpecifierError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

void t.test('every specifier, for an instance of a user manager', async (t) => {
  const table: Array<[string, string]> = [
    ['%n', 'podsock@web.service'],
    ['%N', 'podsock@web'],
    ['%p', 'podsock'],
    ['%P', 'podsock'],
    ['%i', 'web'],
    ['%I', 'web'],
    ['%j', 'podsock'],
    ['%J', 'podsock'],
    ['%f', '/web'],
    ['%h', '/home/alice'],
    ['%s', '/bin/zsh'],
    ['%t', '/run/user/1000'],
    ['%S', '/home/alice/.local/state'],
    ['%C', '/home/alice/.cache'],
    ['%L', '/home/alice/.local/state/log'],
    ['%E', '/home/alice/.config'],
    ['%T', '/tmp'],
    ['%V', '/var/tmp'],
    ['%d', '/run/user/1000/credentials/podsock@web.service'],
    ['%U', '1000'],
    ['%u', 'alice'],
    ['%G', '1001'],
    ['%g', 'staff'],
    ['%H', 'box.example.org'],
    ['%l', 'box'],
    ['%q', "Alice's box"],
    ['%m', '0123456789abcdef0123456789abcdef'],
    ['%b', 'fedcba9876543210fedcba9876543210'],
    ['%v', '6.1.0-13-amd64'],
    ['%a', 'x86-64'],
    ['%o', 'debian'],
    ['%w', '12'],
    ['%B', ''],
    ['%W', ''],
    ['%M', ''],
    ['%A', ''],
    ['%%', '%'],
  ];
  for (const [text, want] of table) t.equal(expandSpecifiers(text, ctx), want, text);
  const tested = new Set(table.map(([s]) => s.slice(1)));
  t.same(SPECIFIERS.filter((s) => !tested.has(s)), [], 'the table covers every specifier');
});

void t.test('the system manager, XDG variables and TMPDIR', async (t) => {
  const system = fixedSpecifiers({ userManager: false, uid: 0, gid: 0, userName: 'root', groupName: 'root', home: '/root' });
  const want: Record<string, string> = { t: '/run', S: '/var/lib', C: '/var/cache', L: '/var/log', E: '/etc', d: '/run/credentials/podsock@web.service', h: '/root', U: '0', u: 'root' };
  for (const [s, v] of Object.entries(want)) t.equal(expandSpecifiers(`%${s}`, system), v, `system %${s}`);

  const xdg = fixedSpecifiers({
    env: { XDG_RUNTIME_DIR: '/r', XDG_STATE_HOME: '/st', XDG_CACHE_HOME: '/ca', XDG_CONFIG_HOME: '/co', TMPDIR: '/big/tmp' },
  });
  t.equal(expandSpecifiers('%t %S %C %L %E %T %V', xdg), '/r /st /ca /st/log /co /big/tmp /big/tmp');
  // A relative XDG_* or TMPDIR is not a path systemd accepts: the default.
  const relative = fixedSpecifiers({ env: { XDG_RUNTIME_DIR: '/r', XDG_STATE_HOME: 'st', TMPDIR: 'tmp', TEMP: '/temp' } });
  t.equal(expandSpecifiers('%S %T', relative), '/home/alice/.local/state /temp');
  t.match(refused('%t', fixedSpecifiers({ env: {} })).message, /%t needs XDG_RUNTIME_DIR/);
});

void t.test('unit names: escapes, templates, no instance', async (t) => {
  // As systemd 252 expands them for 'qprobe-x@a-b\x2dc\x20d.service'.
  const odd = fixedSpecifiers({ unit: 'qprobe-x@a-b\\x2dc\\x20d.service' });
  t.equal(expandSpecifiers('%n|%N|%p|%P|%i|%I|%j|%J|%f', odd), 'qprobe-x@a-b\\x2dc\\x20d.service|qprobe-x@a-b\\x2dc\\x20d|qprobe-x|qprobe/x|a-b\\x2dc\\x20d|a/b-c d|x|x|/a/b-c d');
  const plain = fixedSpecifiers({ unit: 'web.service' });
  t.equal(expandSpecifiers('[%n|%N|%p|%i|%I|%j|%f]', plain), '[web.service|web|web|||web|/web]');
  t.equal(expandSpecifiers('%f', fixedSpecifiers({ unit: 'mnt@-.service' })), '/');
  t.same(unitNameParts('a@b@c.service'), { full: 'a@b@c', prefix: 'a', instance: 'b@c', hasInstance: true });
  t.equal(unitNameUnescape('a\\xc3\\xa9-b'), 'aé/b');
  t.throws(() => unitNameUnescape('a\\x4'), SpecifierError);
  t.throws(() => unitNamePathUnescape('a--b'), /not a normalized path/);
  t.match(refused('%f', fixedSpecifiers({ unit: 'x@-a.service' })).message, /not a normalized path/);
});

void t.test("'%' rules of specifier_printf()", async (t) => {
  t.equal(expandSpecifiers('100%', ctx), '100%', 'a stray % at the end stays');
  t.equal(expandSpecifiers('%-x %/ %.', ctx), '%-x %/ %.', 'non-alphanumeric after % stays');
  t.equal(expandSpecifiers('%%i is %i', ctx), '%i is web');
  t.equal(expandSpecifiers('%%%%', ctx), '%%');
  t.equal(expandSpecifiers('no specifiers', ctx), 'no specifiers');
});

void t.test('unknown and unavailable specifiers are errors', async (t) => {
  for (const s of ['x', 'Z', 'k', '0', '9', 'e']) {
    const err = refused(`a %${s} b`);
    t.equal(err.specifier, s);
    t.equal(err.message, `unknown specifier '%${s}' (write '%%' for a literal '%'; see systemd.unit(5), "Specifiers")`);
  }
  t.match(refused('%y').message, /path of the unit file/);
  t.match(refused('%Y').message, /directory of the unit file/);
});

void t.test('a value that fails to come is an error naming the specifier', async (t) => {
  const broken = fixedSpecifiers();
  Object.defineProperty(broken, 'machineId', {
    get() {
      throw new Error('/etc/machine-id does not hold a 128-bit id');
    },
  });
  const err = refused('id=%m', broken);
  t.equal(err.specifier, 'm');
  t.equal(err.message, "cannot expand '%m': /etc/machine-id does not hold a 128-bit id");
  t.equal(expandSpecifiers('%n', broken), 'podsock@web.service', 'only what is used is looked up');
});

void t.test('the result has a limit', async (t) => {
  const long = fixedSpecifiers({ home: `/${'h'.repeat(1000)}` });
  t.equal(expandSpecifiers('%h'.repeat(60), long).length, 60 * 1001);
  t.match(refused('%h'.repeat(70), long).message, new RegExp(`longer than ${MAX_EXPANDED_LENGTH}`));
});
