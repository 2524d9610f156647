/**
 * Removing the notify directories of podsock processes that are gone. A podsock that exits removes its
 * own two `podsock-XXXXXX` directories (NotifyServer.close); one killed outright (SIGKILL, OOM killer,
 * power cut without a tmpfs) leaves them in the runtime directory, and they would pile up there. A
 * directory is another process's leftover when the socket in it is bound by nobody: connect(2) to a
 * unix socket file that no socket is bound to fails with ECONNREFUSED (unix(7)); a datagram connect to a
 * bound one succeeds and sends nothing (native/dgram.c dgramProbe). Only ECONNREFUSED counts as gone.
 * connect(2) finds the socket by its file, so a podsock in another network namespace counts as alive,
 * which /proc/net/unix (this namespace's sockets only) would not give.
 *
 * Synchronous: it runs once, after the service is ready, and reads a directory podsock owns; Node's
 * fs/promises and net are not loaded for it (memory is what a running service is judged by).
 * Only names podsock makes are looked at (`podsock-` and six characters, as mkdtemp(3) makes them), only
 * directories of this user, and only what podsock put there is removed (`notify.sock`, then the directory
 * if that left it empty: removeOwnNames). Another podsock may be setting one up right now: mkdtemp(3)
 * comes before bind(2), and bind(2) makes the socket's file before the socket can be found through it
 * (net/unix/af_unix.c unix_bind_bsd: the mknod, then the hash insert). So a directory without a socket
 * goes only once it is older than EMPTY_MIN_AGE_MS, one with a socket nobody holds once the socket is
 * older than SOCKET_MIN_AGE_MS, and rmdir(2) removes nothing but an empty directory. A probe that cannot
 * be made at all (no fd left) ends the sweep: it would say the same of every directory.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { probeUnixSocket } from '../native/dgram.js';
import { NOTIFY_SOCKET_NAME, removeOwnNames } from './notify-server.js';

/** mkdtemp(3)'s names under the prefix NotifyServer uses. */
const NOTIFY_DIR_NAME = /^podsock-[A-Za-z0-9]{6}$/;
/** A directory with no socket in it younger than this may be one being set up. */
export const EMPTY_MIN_AGE_MS = 60_000;
/** A socket nobody holds younger than this may be one being bound. */
export const SOCKET_MIN_AGE_MS = 5_000;
/** At most this many directories are looked at in one sweep (the runtime directory is podsock's own). */
export const SWEEP_MAX_DIRS = 4096;

/** Whether a socket is bound to the unix socket file at `path`. */
export type SocketProbe = (path: string) => 'bound' | 'unbound' | 'unknown';

export interface SweepOptions {
  /** Directories of this process's own: never touched, whatever the probe says. */
  keep: readonly string[];
  probe?: SocketProbe;
  /** Wall clock in ms (injectable for tests). */
  now?: () => number;
  /** The user whose directories may go (default: this process's effective uid). */
  uid?: number;
}

export interface SweepResult {
  removed: string[];
  /** Leftovers that could not be removed, with why. */
  failed: Array<{ dir: string; error: string }>;
}

/**
 * Remove the notify directories in `parentDir` whose socket nobody holds any more. Never throws: what
 * cannot be read is skipped, what cannot be removed is reported in `failed`.
 */
export function sweepNotifyDirs(parentDir: string, o: SweepOptions): SweepResult {
  const probe = o.probe ?? probeUnixSocket;
  const now = o.now ?? Date.now;
  const uid = o.uid ?? process.geteuid?.() ?? 0;
  const result: SweepResult = { removed: [], failed: [] };
  let names: string[];
  try {
    names = readdirSync(parentDir);
  } catch {
    return result;
  }
  const keep = new Set(o.keep);
  let looked = 0;
  for (const name of names) {
    if (!NOTIFY_DIR_NAME.test(name)) continue;
    const dir = join(parentDir, name);
    if (keep.has(dir)) continue;
    if (++looked > SWEEP_MAX_DIRS) break;
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== uid) continue;
      const sock = join(dir, NOTIFY_SOCKET_NAME);
      const sst = lstatSync(sock, { throwIfNoEntry: false });
      if (sst === undefined) {
        if (now() - st.mtimeMs < EMPTY_MIN_AGE_MS) continue;
      } else {
        if (!sst.isSocket() || now() - Math.max(st.mtimeMs, sst.ctimeMs) < SOCKET_MIN_AGE_MS) continue;
        let state: ReturnType<SocketProbe>;
        try {
          state = probe(sock);
        } catch (err) {
          result.failed.push({ dir, error: `cannot probe ${NOTIFY_SOCKET_NAME}, the sweep stops: ${(err as Error).message}` });
          break;
        }
        if (state !== 'unbound') continue;
      }
      removeOwnNames(dir);
      result.removed.push(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Gone meanwhile (its own podsock removed it): nothing to do.
      if (code !== 'ENOENT') result.failed.push({ dir, error: (err as Error).message });
    }
  }
  return result;
}
