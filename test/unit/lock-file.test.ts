// Lock files (src/lock-file.ts on native/record-lock.c): another process's lock is refused with its
// pid, and it goes when that process releases it, exits or is killed with SIGKILL. The other process
// is a real one running the same module.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tryLockFile } from '../../src/lock-file.js';
import { lockHolder as holder } from '../helpers/lock-holder.js';
import { tmpDir } from '../helpers/tmp-dir.js';

void t.test("another process's lock is refused with its pid, and can be had once it releases it", async (t) => {
  const path = join(tmpDir(t), 'x.lock');
  const other = await holder(t, path);
  t.equal(other.answer, 'locked', 'the other process took the lock');
  const refused = tryLockFile(path);
  t.same(refused, { lock: null, pid: other.child.pid }, 'refused, naming the holder');
  await other.release();
  const mine = tryLockFile(path);
  t.not(mine.lock, null, 'taken after the release');
  t.equal((await holder(t, path)).answer, `refused ${process.pid}`, 'and now refused to another process, naming this one');
  mine.lock?.release();
  mine.lock?.release(); // idempotent
  t.equal((await holder(t, path)).answer, 'locked', 'released again');
});

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  void t.test(`the lock goes with its holder: ended by ${signal}`, async (t) => {
    const path = join(tmpDir(t), 'x.lock');
    const other = await holder(t, path);
    t.equal(other.answer, 'locked');
    t.equal(tryLockFile(path).lock, null, 'held while the holder lives');
    await other.kill(signal);
    const mine = tryLockFile(path);
    t.not(mine.lock, null, 'free once it is gone: nothing stale is left');
    mine.lock?.release();
  });
}

void t.test('in one process a path is locked once: a second try is refused with its own pid', async (t) => {
  const path = join(tmpDir(t), 'x.lock');
  const first = tryLockFile(path);
  t.not(first.lock, null);
  t.same(tryLockFile(path), { lock: null, pid: process.pid });
  first.lock?.release();
  const again = tryLockFile(path);
  t.not(again.lock, null, 'and taken again after the release');
  again.lock?.release();
});

void t.test('a symbolic link, a FIFO or a directory at the path is refused, not followed or waited on', async (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'target'), 'keep');
  symlinkSync(join(dir, 'target'), join(dir, 'link.lock'));
  t.throws(() => tryLockFile(join(dir, 'link.lock')), { code: 'PODSOCK_ERR_PRIVATE_DIR', message: /lock file '.*link\.lock': it is a symbolic link/ });
  t.equal(readFileSync(join(dir, 'target'), 'utf8'), 'keep', 'the target is untouched');
  t.equal(spawnSync('mkfifo', [join(dir, 'fifo.lock')]).status, 0, 'mkfifo');
  t.throws(() => tryLockFile(join(dir, 'fifo.lock')), { code: 'PODSOCK_ERR_PRIVATE_DIR', message: /not a regular file/ });
  mkdirSync(join(dir, 'dir.lock'));
  t.throws(() => tryLockFile(join(dir, 'dir.lock')), { code: 'PODSOCK_ERR_PRIVATE_DIR', message: /lock file '.*dir\.lock': EISDIR/ });
});
