// One podsock auto-update at a time per service and per image name (src/autoupdate/lock.ts), with the
// other run a real process holding the lock file; and updateService skips a service whose lock another
// run holds before asking podman anything, and releases its own when the row is done, also on a throw.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { imageLockPath, lockForUpdate, serviceLockPath } from '../../../src/autoupdate/lock.js';
import { updateService } from '../../../src/autoupdate/update.js';
import type { ServiceConfig } from '../../../src/config/load.js';
import { tryLockFile } from '../../../src/lock-file.js';
import { lockHolder } from '../../helpers/lock-holder.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const FAKE_PODMAN = fileURLToPath(new URL('../../fixtures/fake-podman.sh', import.meta.url));

function service(name: string, image = `quay.io/a/${name}:latest`): ServiceConfig {
  return { name, image, containerName: `podsock-${name}`, autoUpdate: 'registry' } as unknown as ServiceConfig;
}

/** Whether this process can take the lock of `path` now (released again at once). */
function free(path: string): boolean {
  const r = tryLockFile(path);
  r.lock?.release();
  return r.lock !== null;
}

/** A state directory two levels below a directory of this test, as stateDirFor makes it. */
function stateDir(t: Parameters<typeof tmpDir>[0]): string {
  const root = tmpDir(t);
  return join(root, 'podsock', 'state');
}

void t.test("a service another run is updating: busy, naming that run's pid; free again once it ends", async (t) => {
  const dir = stateDir(t);
  const web = service('web');
  const mine = lockForUpdate(dir, web); // makes the directory; released at once
  t.ok('release' in mine);
  if ('release' in mine) mine.release();
  const other = await lockHolder(t, serviceLockPath(dir, 'web'));
  t.equal(other.answer, 'locked');
  t.same(lockForUpdate(dir, web), { busy: `another podsock auto-update is updating it, pid ${other.child.pid}` });
  t.ok(free(imageLockPath(dir, web.image)), 'the image lock taken on the way is not kept');
  await other.kill('SIGKILL');
  const after = lockForUpdate(dir, web);
  t.ok('release' in after, 'free once the other run is gone');
  if ('release' in after) after.release();
});

void t.test('two services of one image name (instances of a template): one run at a time moves the tag', async (t) => {
  const dir = stateDir(t);
  const one = service('web@1', 'quay.io/a/web:latest');
  const two = service('web@2', 'quay.io/a/web:latest');
  const held = lockForUpdate(dir, one);
  t.ok('release' in held);
  const other = await lockHolder(t, imageLockPath(dir, two.image));
  t.equal(other.answer, `refused ${process.pid}`, 'another process cannot lock the image name this run holds');
  const busy = await lockHolder(t, serviceLockPath(dir, 'web@2'));
  t.equal(busy.answer, 'locked', 'the other service itself is free');
  await busy.release();
  if ('release' in held) held.release();
  const image = await lockHolder(t, imageLockPath(dir, two.image));
  t.equal(image.answer, 'locked', 'released with the service');
  t.same(lockForUpdate(dir, two), { busy: `another podsock auto-update is updating its image 'quay.io/a/web:latest', pid ${image.child.pid}` });
  t.ok(free(serviceLockPath(dir, 'web@2')), "the service's own lock is given back when the image's is busy");
  t.not(imageLockPath(dir, 'quay.io/a/web:latest'), imageLockPath(dir, 'quay.io/a/web:1'), 'another tag is another lock');
});

void t.test('updateService: a busy service is skipped before podman is asked; its own lock is released after the row, also when podman fails', async (t) => {
  const dir = stateDir(t);
  const log = join(tmpDir(t), 'podman.log');
  const podman = { binary: FAKE_PODMAN, env: { PATH: '/usr/bin:/bin', FAKE_PODMAN_REAL: '/bin/false', FAKE_PODMAN_LOG: log } };
  const deps = {
    podman,
    stateDir: dir,
    dryRun: false,
    lock: (c: ServiceConfig) => lockForUpdate(dir, c),
    tryImage: () => Promise.reject(new Error('no trial in this test')),
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const other = await lockHolder(t, serviceLockPath(dir, 'web'));
  t.equal(other.answer, 'locked');
  t.match(await updateService(service('web'), deps), { service: 'web', status: 'skipped', message: `another podsock auto-update is updating it, pid ${other.child.pid}`, imageId: null });
  t.throws(() => readFileSync(log), { code: 'ENOENT' }, 'podman was not run');
  await other.release();

  // podman fails (the fake runs /bin/false): the pull throws, and the locks go with the row.
  await t.rejects(updateService(service('web'), deps), { code: 'PODSOCK_ERR_PODMAN', message: /Cannot pull/ });
  t.match(readFileSync(log, 'utf8'), /container exists podsock-web/, 'podman was run this time');
  t.equal((await lockHolder(t, serviceLockPath(dir, 'web'))).answer, 'locked', "the service's lock was released");
  t.equal((await lockHolder(t, imageLockPath(dir, 'quay.io/a/web:latest'))).answer, 'locked', "the image's lock was released");
});
