/**
 * private-files.ts against what another local user can plant: a directory of theirs, a loose one, a
 * symbolic link where a directory or a file should be, a file at a name podsock might write to.
 * Run as root (the test machines are): chown() gives things to `nobody`.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { privateDir, readPrivateFile, removePrivateFile, writePrivateFile } from '../../src/private-files.js';
import { caught } from '../helpers/caught.js';
import { tmpDir as base } from '../helpers/tmp-dir.js';

const NOBODY = 65534;
const root = process.geteuid?.() === 0;

void t.test('creates each missing level with mode 0700', async (t) => {
  const b = base(t);
  const dir = join(b, 'podsock-1000', 'state');
  privateDir(dir, 2);
  for (const d of [join(b, 'podsock-1000'), dir]) {
    const st = lstatSync(d);
    t.ok(st.isDirectory(), d);
    t.equal(st.mode & 0o7777, 0o700, `${d} is 0700`);
  }
  privateDir(dir, 2);
  t.pass('an existing private chain is fine');
});

void t.test('an own directory that others may only read is tightened to 0700', async (t) => {
  const b = base(t);
  const dir = join(b, 'rt');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  privateDir(dir, 1);
  t.equal(statSync(dir).mode & 0o7777, 0o700);
});

void t.test('a directory of another user is refused, naming it, the owner found and what is expected', { skip: !root && 'needs root to chown' }, async (t) => {
  const b = base(t);
  const top = join(b, 'podsock-1000');
  mkdirSync(top, { mode: 0o700 });
  chownSync(top, NOBODY, NOBODY);
  const err = caught(() => privateDir(join(top, 'state'), 2));
  t.equal(err.code, 'PODSOCK_ERR_PRIVATE_DIR');
  t.equal(err.exitCode, 73);
  t.equal(
    err.message,
    `Refusing to use directory '${top}': found a directory owned by uid ${NOBODY} with mode 0700; expected a directory owned by uid 0 (this user) that no other user can write to. ` +
      'Another user may have created it: remove it, or give podsock a private XDG_RUNTIME_DIR',
  );
  t.same(readdirSync(top), [], 'nothing was created inside it');
  t.equal(statSync(top).uid, NOBODY, 'and it was left alone');
});

void t.test('a directory others may write to is refused, even an own one', async (t) => {
  const b = base(t);
  const dir = join(b, 'loose');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  const err = caught(() => privateDir(dir, 1));
  t.match(err.message, `Refusing to use directory '${dir}': found a directory owned by uid ${process.geteuid?.() ?? 0} with mode 0777;`);
  t.equal(statSync(dir).mode & 0o7777, 0o777, 'its mode is not changed');
  chmodSync(dir, 0o1770);
  t.match(caught(() => privateDir(dir, 1)).message, 'with mode 1770', 'group-writable (sticky or not) too');
});

void t.test('a symbolic link where a directory should be is refused, not followed', async (t) => {
  const b = base(t);
  const target = join(b, 'victim');
  mkdirSync(target, { mode: 0o755 });
  chmodSync(target, 0o755);
  const link = join(b, 'podsock-1000');
  symlinkSync(target, link);
  const err = caught(() => privateDir(join(link, 'state'), 2));
  t.match(err.message, `Refusing to use directory '${link}': found a symbolic link owned by uid`);
  t.equal(statSync(target).mode & 0o7777, 0o755, 'the target keeps its mode');
  t.same(readdirSync(target), [], 'nothing is created in the target');
  writeFileSync(join(b, 'file'), '');
  t.match(caught(() => privateDir(join(b, 'file'), 1)).message, 'found a regular file owned by uid');
});

void t.test('a file is written through a fresh private name and replaces a planted symbolic link', async (t) => {
  const b = base(t);
  privateDir(join(b, 'state'), 1);
  const victim = join(b, 'victim');
  writeFileSync(victim, 'precious');
  const path = join(b, 'state', 'svc.failures');
  symlinkSync(victim, path);
  writePrivateFile(path, Buffer.from('{"count":1}'));
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'the link target is untouched');
  const st = lstatSync(path);
  t.ok(st.isFile(), 'the link was replaced by a regular file');
  t.equal(st.mode & 0o777, 0o600);
  t.equal(readFileSync(path, 'utf8'), '{"count":1}');
  t.same(readdirSync(join(b, 'state')), ['svc.failures'], 'no temporary file is left');
});

void t.test('a file planted at the destination is replaced, not written into', { skip: !root && 'needs root to chown' }, async (t) => {
  const b = base(t);
  privateDir(join(b, 'state'), 1);
  const path = join(b, 'state', 'x.plan');
  writeFileSync(path, '');
  chmodSync(path, 0o666);
  chownSync(path, NOBODY, NOBODY);
  const planted = statSync(path).ino;
  writePrivateFile(path, Buffer.from('secret'));
  t.not(statSync(path).ino, planted, 'a new inode');
  t.equal(statSync(path).uid, 0);
  t.equal(statSync(path).mode & 0o777, 0o600);
});

void t.test('reading refuses a symbolic link, a FIFO, another user\'s file and an oversized one', async (t) => {
  const b = base(t);
  const victim = join(b, 'victim');
  writeFileSync(victim, '{"count":99}');
  const link = join(b, 'link');
  symlinkSync(victim, link);
  t.equal(readPrivateFile(join(b, 'missing'), 100), null, 'missing is null');
  t.equal(caught(() => readPrivateFile(link, 100)).message, `Refusing to read '${link}': it is a symbolic link`);
  const fifo = join(b, 'fifo');
  execFileSync('mkfifo', [fifo]);
  t.match(caught(() => readPrivateFile(fifo, 100)).message, `Refusing to read '${fifo}': found a special file (FIFO, socket or device)`, 'a FIFO does not block');
  t.match(caught(() => readPrivateFile(victim, 4)).message, 'of at most 4 bytes');
  t.equal(readPrivateFile(victim, 100)?.toString(), '{"count":99}');
  if (root) {
    chownSync(victim, NOBODY, NOBODY);
    t.match(caught(() => readPrivateFile(victim, 100)).message, `owned by uid ${NOBODY}`);
  }
  removePrivateFile(link);
  t.equal(readFileSync(victim, 'utf8'), '{"count":99}', 'removing a link leaves its target');
  removePrivateFile(link);
  t.pass('removing a missing name is fine');
});
