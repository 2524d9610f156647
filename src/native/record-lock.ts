/** Advisory record locks on a whole file (native/record-lock.c), which core Node does not offer. */
import { call, checkFd } from './addon.js';

interface RecordLockBinding {
  lockFile(fd: number): number;
}

/** What tryLockFd found: the lock is now this process's, or another process holds it (its pid, or null when that process is in another PID namespace). */
export type LockFdResult = { acquired: true } | { acquired: false; pid: number | null };

/**
 * Try to take the write lock on the whole file `fd` refers to (fcntl(2) F_SETLK), without waiting. The
 * kernel drops it when this process exits, however it ends, or when it closes any fd of that file.
 * Throws PODSOCK_ERR_NATIVE when fcntl fails for another reason than a conflicting lock.
 */
export function tryLockFd(fd: number): LockFdResult {
  checkFd('lock file', fd);
  const r = call('lock file', String(fd), (b: RecordLockBinding) => b.lockFile(fd));
  if (r === 0) return { acquired: true };
  return { acquired: false, pid: r > 0 ? r : null };
}
