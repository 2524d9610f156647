/**
 * podsock's private directories and the small files in them (state, failure record, the plan for
 * podsock-launch), made so that another local user cannot take them over. Without XDG_RUNTIME_DIR
 * (a system unit with User=, `sudo -u`, cron) they live in /tmp/podsock-UID, a name anyone can create
 * first: a directory is therefore made one level at a time and used only if it is a real directory
 * (not a symbolic link) owned by this user and writable by nobody else; files are written to a fresh
 * name opened with O_CREAT|O_EXCL|O_NOFOLLOW and renamed into place (rename(2) replaces a symbolic link
 * itself, never its target), and read with O_NOFOLLOW (open(2)). The model is systemd's
 * mkdir_safe() (src/basic/mkdir.c), which refuses an existing directory with the wrong owner or mode.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { PodsockError, q } from './errors.js';

/** podsock's runtime directory is one level below a directory it does not own (paths.ts runtimeDirFor). */
export const RUNTIME_DIR_LEVELS = 1;
/** podsock's state directory is two levels below a directory it does not own (paths.ts stateDirFor). */
export const STATE_DIR_LEVELS = 2;

// libuv adds O_CLOEXEC to every open (uv_fs_open).
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY, O_DIRECTORY, O_NONBLOCK } = fsConstants;

function uid(): number {
  return process.geteuid?.() ?? 0;
}

function describe(st: Stats): string {
  const kind = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'a special file (FIFO, socket or device)';
  return `${kind} owned by uid ${st.uid} with mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

function unsafeDir(dir: string, found: string): PodsockError {
  return new PodsockError(
    'PODSOCK_ERR_PRIVATE_DIR',
    `Refusing to use directory ${q(dir)}: found ${found}; expected a directory owned by uid ${uid()} (this user) that no other user can write to. ` +
      `Another user may have created it: remove it, or give podsock a private XDG_RUNTIME_DIR`,
    { details: { dir, found } },
  );
}

/** Make (mode 0700) or check one directory level; an own directory that others may read is tightened to 0700. */
function privateLevel(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new PodsockError('PODSOCK_ERR_PRIVATE_DIR', `Cannot create directory ${q(dir)}: ${(err as Error).message}`, { cause: err, details: { dir } });
    }
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid() || (st.mode & 0o022) !== 0) throw unsafeDir(dir, describe(st));
  // O_NOFOLLOW|O_DIRECTORY and the same inode: what is checked is what gets tightened.
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    const f = fstatSync(fd);
    if (f.ino !== st.ino || f.dev !== st.dev || f.uid !== uid() || (f.mode & 0o022) !== 0) throw unsafeDir(dir, describe(f));
    if ((f.mode & 0o7777) !== 0o700) fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/**
 * Make `dir` and the `levels - 1` directories above it private to this user, one level at a time from
 * the top: each is created with mode 0700 or, when it exists, must be a directory (not a symbolic link)
 * owned by this user and writable by nobody else (then it is set to 0700). The directory above those
 * levels must exist (/run, /tmp, XDG_RUNTIME_DIR). Throws PODSOCK_ERR_PRIVATE_DIR naming the directory,
 * what was found and what is expected.
 */
export function privateDir(dir: string, levels: number): void {
  if (!isAbsolute(dir)) throw new PodsockError('PODSOCK_ERR_INTERNAL', `Expected an absolute directory, got ${q(dir)}`);
  const chain: string[] = [];
  for (let d = dir, i = 0; i < levels; i++, d = dirname(d)) chain.unshift(d);
  for (const d of chain) privateLevel(d);
}

/**
 * Write `bytes` to `path` (mode 0600) as a whole: to a fresh, unpredictable name beside it, opened with
 * O_CREAT|O_EXCL|O_NOFOLLOW, then renamed over `path`. Whatever `path` was (a symbolic link, another
 * user's file) is replaced, never written through. The directory must already be private (privateDir).
 */
export function writePrivateFile(path: string, bytes: Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      fchmodSync(fd, 0o600); // the open's mode is subject to the umask
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    removePrivateFile(tmp);
    throw err;
  }
}

/**
 * The contents of `path` if it is a regular file of this user of at most `maxBytes`; null when it does
 * not exist. Opened with O_NOFOLLOW (a symbolic link is refused) and O_NONBLOCK (a planted FIFO cannot
 * block). Throws PODSOCK_ERR_PRIVATE_DIR for anything else found there.
 */
export function readPrivateFile(path: string, maxBytes: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new PodsockError('PODSOCK_ERR_PRIVATE_DIR', `Refusing to read ${q(path)}: it is a symbolic link`, { cause: err, details: { path } });
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid() || st.size > maxBytes) {
      throw new PodsockError('PODSOCK_ERR_PRIVATE_DIR', `Refusing to read ${q(path)}: found ${describe(st)} of ${st.size} bytes; expected a regular file of uid ${uid()} of at most ${maxBytes} bytes`, {
        details: { path },
      });
    }
    const buf = Buffer.alloc(st.size);
    let got = 0;
    for (let n = 1; got < buf.length && n > 0; got += n) n = readSync(fd, buf, got, buf.length - got, null);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Remove the name `path` (unlink(2): a symbolic link goes, its target stays); a missing one is fine. */
export function removePrivateFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
