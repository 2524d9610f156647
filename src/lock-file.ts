/**
 * Lock files in podsock's private directories: a file whose write lock (native/record-lock.c) says
 * which process is doing something, held as long as that process keeps it and dropped by the kernel
 * when the process ends in any way, SIGKILL included, so nothing stale is left to clean up. The file
 * itself stays (removing it would let a second process lock a new file of the same name while a
 * first still holds the old one) and holds nothing; the holder's pid comes from the kernel
 * (fcntl(2) F_GETLK).
 *
 * The file is opened with O_CREAT|O_NOFOLLOW|O_NONBLOCK (a symbolic link or a FIFO put there is
 * refused, not followed or waited on) and must be a regular file of this user. The directory must
 * already be private (private-files.ts privateDir). A record lock is the process's: closing any fd of
 * the file releases it, and a second lock in the same process would succeed silently, so this module
 * is the only one that opens lock files, and it refuses a second lock of a path it holds.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync } from 'node:fs';
import { PodsockError, q } from './errors.js';
import { tryLockFd } from './native/record-lock.js';

// libuv adds O_CLOEXEC to every open (uv_fs_open): podman and the other children never get the fd.
const { O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_RDWR } = fsConstants;

/** A lock this process holds. release() is idempotent. */
export interface HeldLock {
  readonly path: string;
  release(): void;
}

/** The outcome of tryLockFile: the lock, or the pid of the process holding it (null when unknown). */
export type LockAttempt = { lock: HeldLock } | { lock: null; pid: number | null };

/** The lock files this process holds, by path. */
const held = new Set<string>();

function uid(): number {
  return process.geteuid?.() ?? 0;
}

/**
 * Take the lock of `path` without waiting (see the module comment): the lock, or the pid of whoever
 * holds it (this process's own pid when it holds it already). Throws PODSOCK_ERR_PRIVATE_DIR naming
 * the path when it cannot be opened, is a symbolic link, or is anything but a regular file of this user.
 */
export function tryLockFile(path: string): LockAttempt {
  if (held.has(path)) return { lock: null, pid: process.pid };
  let fd: number;
  try {
    fd = openSync(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symbolic link' : (err as Error).message;
    throw new PodsockError('PODSOCK_ERR_PRIVATE_DIR', `Refusing to use lock file ${q(path)}: ${why}`, { cause: err, details: { path } });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid()) {
      throw new PodsockError('PODSOCK_ERR_PRIVATE_DIR', `Refusing to use lock file ${q(path)}: it is not a regular file of uid ${uid()} (found uid ${st.uid}, mode ${(st.mode & 0o170777).toString(8)})`, {
        details: { path },
      });
    }
    const r = tryLockFd(fd);
    if (!r.acquired) {
      closeSync(fd);
      return { lock: null, pid: r.pid };
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  held.add(path);
  let open = true;
  return {
    lock: {
      path,
      release(): void {
        if (!open) return;
        open = false;
        held.delete(path);
        closeSync(fd); // closing the fd releases the lock (fcntl(2))
      },
    },
  };
}
