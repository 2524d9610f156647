/**
 * One `podsock auto-update` at a time per service and per image name. Without it, two runs at once (a
 * timer's and a manual one) would both pull, both try a new image as the same CONTAINER-update, and
 * move the image's tag in an interleaved order. Two locks, both in podsock's state directory
 * (lock-file.ts: kernel record locks, gone with the process that held them):
 *
 * - NAME.auto-update.lock, the service's: its trial container and its record (record.ts);
 * - auto-update-image-HASH.lock, the image name's (HASH: SHA-256 of Image=): the tag that a pull and
 *   each rollback move, which the instances of a template service (web@1, web@2) share.
 *
 * A service whose lock another run holds is skipped with that run's pid rather than waited for: the
 * other run is doing the same update and records its outcome, as systemd does not queue a second run
 * of a service a timer elapses on while it still runs (systemd.timer(5)).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ServiceConfig } from '../config/load.js';
import { q } from '../errors.js';
import { tryLockFile } from '../lock-file.js';
import { privateDir, STATE_DIR_LEVELS } from '../private-files.js';

/** Both locks of a service, or why they could not be had. release() is idempotent. */
export type UpdateLock = { release(): void } | { busy: string };

export function serviceLockPath(stateDir: string, name: string): string {
  return join(stateDir, `${name}.auto-update.lock`);
}

export function imageLockPath(stateDir: string, image: string): string {
  return join(stateDir, `auto-update-image-${createHash('sha256').update(image).digest('hex').slice(0, 32)}.lock`);
}

const by = (pid: number | null): string => (pid === null ? 'pid unknown (another PID namespace)' : `pid ${pid}`);

/**
 * Take the service's lock, then its image name's, without waiting (see the module comment); on the
 * first one held elsewhere, nothing is kept and `busy` says who holds what. Throws
 * PODSOCK_ERR_PRIVATE_DIR when the state directory or a lock file is not safe to use.
 */
export function lockForUpdate(stateDir: string, cfg: ServiceConfig): UpdateLock {
  privateDir(stateDir, STATE_DIR_LEVELS);
  const service = tryLockFile(serviceLockPath(stateDir, cfg.name));
  if (service.lock === null) return { busy: `another podsock auto-update is updating it, ${by(service.pid)}` };
  const image = tryLockFile(imageLockPath(stateDir, cfg.image));
  if (image.lock === null) {
    service.lock.release();
    return { busy: `another podsock auto-update is updating its image ${q(cfg.image)}, ${by(image.pid)}` };
  }
  const held = [image.lock, service.lock];
  return {
    release(): void {
      for (const l of held) l.release();
    },
  };
}
