import { chownSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { backoffFor, clearFailures, recordFailure, FAILURE_MEMORY_MS } from '../../src/start-failures.js';
import { tmpDir } from '../helpers/tmp-dir.js';

void t.test('backoff grows 0, 1, 2, 4 … and stops at 30 s', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 50].map(backoffFor), [0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

void t.test('failures count up, are forgotten after a quiet period, and clear', async (t) => {
  const dir = tmpDir(t, 'podsock-sf-');
  const file = join(dir, 'state', 'svc.failures');
  t.equal(recordFailure(file, 1000), 1);
  t.equal(recordFailure(file, 2000), 2);
  t.equal(recordFailure(file, 3000), 3);
  t.same(JSON.parse(readFileSync(file, 'utf8')), { count: 3, lastAt: 3000 });
  t.equal(recordFailure(file, 3000 + FAILURE_MEMORY_MS + 1), 1, 'a quiet period starts over');
  clearFailures(file);
  t.equal(recordFailure(file, 10), 1);
});

void t.test('a corrupt record counts as no history', async (t) => {
  const dir = tmpDir(t, 'podsock-sf-');
  const file = join(dir, 'state', 'x.failures');
  mkdirSync(join(dir, 'state'), { mode: 0o700 });
  writeFileSync(file, '{"count":"lots"}');
  t.equal(recordFailure(file, 5), 1);
});

void t.test('a symbolic link planted at the record\'s name is replaced, never written through', async (t) => {
  const dir = tmpDir(t, 'podsock-sf-');
  mkdirSync(join(dir, 'state'), { mode: 0o700 });
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious');
  const file = join(dir, 'state', 'svc.failures');
  symlinkSync(victim, file);
  t.equal(recordFailure(file, 1000), 1);
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'the link\'s target is untouched');
  t.ok(lstatSync(file).isFile(), 'the record replaced the link');
  symlinkSync(victim, `${file}.2`);
  clearFailures(`${file}.2`);
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'clearing removes the link, not its target');
});

void t.test('a state directory of another user is not written to', { skip: process.geteuid?.() !== 0 && 'needs root to chown' }, async (t) => {
  const dir = tmpDir(t, 'podsock-sf-');
  const top = join(dir, 'podsock-1000');
  mkdirSync(join(top, 'state'), { recursive: true, mode: 0o700 });
  chownSync(top, 65534, 65534);
  chownSync(join(top, 'state'), 65534, 65534);
  t.equal(recordFailure(join(top, 'state', 'svc.failures'), 1000), 1, 'podsock just does not back off');
  t.same(readdirSync(join(top, 'state')), [], 'nothing was written there');
});
