/**
 * Removing the notify directories of podsock processes that are gone. A podsock that exits removes its
 * own two `podsock-XXXXXX` directories (NotifyServer.close); one killed outright (SIGKILL, OOM killer,
 * power cut without a tmpfs) leaves them in the runtime directory, and they would pile up there. A
 * directory is another process's leftover when the socket in it is bound by nobody: connect(2) to a
 * unix socket file that no socket is bound to fails with ECONNREFUSED, and to one bound by a datagram
 * socket from a stream socket with EPROTOTYPE, without the bound socket seeing anything (unix(7)).
 * So the probe is a stream connect, and only ECONNREFUSED counts as gone.
 *
 * Only names podsock makes are looked at (`podsock-` and six characters, as mkdtemp(3) makes them), only
 * directories of this user, and only what podsock put there is removed (`notify.sock`, then the directory
 * if that left it empty: removeOwnNames). A directory without a socket may be one being set up right now
 * (mkdtemp(3) comes before bind(2)): it goes only once it is older than EMPTY_MIN_AGE_MS, and rmdir(2)
 * removes nothing but an empty directory.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NOTIFY_SOCKET_NAME, removeOwnNames } from './notify-server.js';

/** mkdtemp(3)'s names under the prefix NotifyServer uses. */
const NOTIFY_DIR_NAME = /^podsock-[A-Za-z0-9]{6}$/;
/** A directory with no socket in it younger than this may be one being set up. */
export const EMPTY_MIN_AGE_MS = 60_000;
/** At most this many directories are looked at in one sweep (the runtime directory is podsock's own). */
export const SWEEP_MAX_DIRS = 4096;

/** Whether a socket is bound to the unix socket file at `path`. */
export type SocketProbe = (path: string) => Promise<'bound' | 'unbound' | 'unknown'>;

export interface SweepOptions {
  /** Directories of this process's own: never touched, whatever the probe says. */
  keep: readonly string[];
  probe?: SocketProbe;
  /** Wall clock in ms (injectable for tests). */
  now?: () => number;
}

export interface SweepResult {
  removed: string[];
  /** Leftovers that could not be removed, with why. */
  failed: Array<{ dir: string; error: string }>;
}

/** The real probe: a stream connect to the file (see the file comment). */
export const connectProbe: SocketProbe = async (path) => {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve('bound'); // a stream socket there: not one of podsock's, but someone's
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      s.destroy();
      resolve(err.code === 'ECONNREFUSED' ? 'unbound' : err.code === 'EPROTOTYPE' ? 'bound' : 'unknown');
    });
  });
};

/**
 * Remove the notify directories in `parentDir` whose socket nobody holds any more. Never throws: what
 * cannot be read is skipped, what cannot be removed is reported in `failed`.
 */
export async function sweepNotifyDirs(parentDir: string, o: SweepOptions): Promise<SweepResult> {
  const probe = o.probe ?? connectProbe;
  const now = o.now ?? Date.now;
  const uid = process.geteuid?.() ?? 0;
  const result: SweepResult = { removed: [], failed: [] };
  let names: string[];
  try {
    names = await readdir(parentDir);
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
      const st = await lstat(dir);
      if (!st.isDirectory() || st.uid !== uid) continue;
      const sock = join(dir, NOTIFY_SOCKET_NAME);
      const sst = await lstat(sock).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (sst === null) {
        if (now() - st.mtimeMs < EMPTY_MIN_AGE_MS) continue;
      } else if (!sst.isSocket() || (await probe(sock)) !== 'unbound') {
        continue;
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
