/**
 * podman started before Node booted. podsock-launch (native/launch.c), the ExecStart= of generated
 * units, carries out the plan an earlier activation of the same command line left, then execs podsock
 * and says what it did in PODSOCK_PRESTART; PODSOCK_PLAN names the plan file. This module is podsock's
 * half of that contract: reading PODSOCK_PRESTART, the digest both sides compute over the podman command
 * (podsock adopts the process only when its own command has the same digest), and writing the plan.
 * Pure except writePlan()/removePlan().
 *
 * The plan is only a way to start earlier: podsock still builds its command from the configuration, and
 * whatever the plan says that podsock would not do is killed before podsock starts its own.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { PodsockError, q } from '../errors.js';
import { privateDir, removePrivateFile, STATE_DIR_LEVELS, writePrivateFile } from '../private-files.js';

/** Per-activation variables: never written into a plan; podsock-launch copies them from its own environment. */
const PASSED_PREFIXES = ['INVOCATION_ID=', 'JOURNAL_STREAM=', 'SYSTEMD_EXEC_PID=', 'TRIGGER_', 'MONITOR_'] as const;
/** Longest PODSOCK_PRESTART podsock reads (launch.c writes at most 8 KiB). */
const PRESTART_MAX = 8192;
const NOTIFY_DIR = /^\/.*\/podsock-[A-Za-z0-9]{6}$/;

/** The bounds podsock-launch puts on a plan (native/plan.h); a plan beyond them is refused there, so it is not written. */
export const PLAN_LIMITS = Object.freeze({
  bytes: 1024 * 1024,
  /** One argument or NAME=VALUE: execve(2)'s MAX_ARG_STRLEN (linux/binfmts.h) less the NUL. */
  wordBytes: 32 * 4096 - 1,
  /** A path: PATH_MAX less the NUL. */
  pathBytes: 4095,
  args: 4096,
  env: 4096,
  files: 64,
  mkdirs: 8,
  unlinks: 8,
  notify: 4,
  fds: 1024,
  /** DIR/notify.sock must fit sockaddr_un.sun_path (unix(7)). */
  notifyDirBytes: 108 - '/notify.sock'.length - 1,
});

/** What podsock-launch did: a running podman to adopt with its notify sockets, or why nothing. */
export type Prestart =
  | { kind: 'started'; pid: number; digest: string; notify: Array<{ fd: number; dir: string }> }
  | { kind: 'none'; reason: string };

/**
 * Read PODSOCK_PRESTART: null when podsock was not started by podsock-launch. A value that is not what
 * launch.c writes is reported as `none`, except that a valid pid is kept so that the caller can stop
 * that process.
 */
export function parsePrestart(raw: string | undefined): Prestart | null {
  if (raw === undefined || raw === '') return null;
  if (raw.length > PRESTART_MAX) return { kind: 'none', reason: `PODSOCK_PRESTART is longer than ${PRESTART_MAX} characters` };
  if (raw.startsWith('none')) return { kind: 'none', reason: raw.slice(5) || 'no reason given' };
  let pid = 0;
  let digest = '';
  const notify: Array<{ fd: number; dir: string }> = [];
  for (const word of raw.split(' ')) {
    const eq = word.indexOf('=');
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (key === 'pid' && /^[1-9][0-9]{0,9}$/.test(value)) pid = Number(value);
    else if (key === 'digest' && /^[0-9a-f]{64}$/.test(value)) digest = value;
    else if (key === 'notify') {
      const m = /^([0-9]{1,9}):(.+)$/.exec(value);
      if (m === null || Number(m[1]) < 3 || !NOTIFY_DIR.test(m[2] as string)) return { kind: 'none', reason: `bad notify entry in PODSOCK_PRESTART: ${word}` };
      notify.push({ fd: Number(m[1]), dir: m[2] as string });
    } else return { kind: 'none', reason: `unexpected ${JSON.stringify(word)} in PODSOCK_PRESTART` };
  }
  if (pid === 0 || digest === '' || notify.length !== 2) return { kind: 'none', reason: `PODSOCK_PRESTART is incomplete: ${raw}` };
  return { kind: 'started', pid, digest, notify };
}

/** A variable name podman's environment can carry: not empty, no '=' (execve(2) splits at the first), no NUL. */
function checkVarName(name: string, what: string): void {
  if (name === '' || name.includes('=') || name.includes('\0')) {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot ${what}: the variable name ${q(name)} is not a name (expected no '=' or NUL and at least one character)`);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function field(s: string | Buffer): Buffer[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return [u32(b.length), b];
}

/**
 * The digest of a podman command as launch.c computes it (native/command-digest.h): SHA-256, as hex, of
 * `podsock-command 1` and a NUL, then the count of argv, the executable and each of argv, then the
 * count of variables and each variable's name and value in the byte order of the names, every field
 * after its 32-bit big-endian byte length. LISTEN_PID (set in the child) is not part of it. A name
 * that cannot be in an environment is refused (PODSOCK_ERR_INTERNAL): podsock builds these itself.
 */
export function commandDigest(exe: string, argv: readonly string[], env: Readonly<Record<string, string>>): string {
  const vars = Object.entries(env)
    .filter(([k]) => k !== 'LISTEN_PID')
    .map(([k, v]) => {
      checkVarName(k, 'compute the digest of the podman command');
      return [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const;
    })
    .sort((a, b) => Buffer.compare(a[0], b[0]));
  const h = createHash('sha256').update('podsock-command 1\0');
  for (const b of [u32(argv.length), ...field(exe), ...argv.flatMap((a) => field(a))]) h.update(b);
  h.update(u32(vars.length));
  for (const [k, v] of vars) for (const b of [...field(k), ...field(v)]) h.update(b);
  return h.digest('hex');
}

/** stat(2) as launch.c prints it: "dev:ino:size:mtime_ns", or "-" when it cannot be stat'ed. */
export function fileSignature(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return '-';
  }
}

export interface PlanInput {
  /** Files whose change makes the plan stale (configuration candidates, podsock's own script). */
  checkFiles: readonly string[];
  /** Created (mode 0700) before podman starts. */
  mkdirs: readonly string[];
  /** Removed before podman starts. */
  unlinks: readonly string[];
  /** The notify directories the command names, in PODSOCK_PRESTART's order, with their modes. */
  notify: ReadonlyArray<{ dir: string; mode: number }>;
  /** Listening fds passed at 3.. (handover), 0 otherwise. */
  fds: number;
  exe: string;
  /** argv, argv[0] included. */
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
}

/** Refuse what podsock-launch would refuse (native/plan.h), naming the field and its bound. */
function checkPlanBounds(p: PlanInput): void {
  const L = PLAN_LIMITS;
  const bad = (what: string): never => {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot write a plan for podsock-launch: ${what}`);
  };
  const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
  const counts: Array<[string, number, number]> = [
    ['files to check', p.checkFiles.length, L.files],
    ['directories to create', p.mkdirs.length, L.mkdirs],
    ['files to remove', p.unlinks.length, L.unlinks],
    ['notify sockets', p.notify.length, L.notify],
    ['arguments', p.argv.length, L.args],
    ['variables', Object.keys(p.env).length, L.env],
  ];
  for (const [what, n, max] of counts) if (n > max) bad(`${n} ${what}, expected at most ${max}`);
  for (const path of [...p.checkFiles, ...p.mkdirs, ...p.unlinks, p.exe]) {
    if (bytes(path) === 0 || bytes(path) > L.pathBytes) bad(`the path ${q(path)} is ${bytes(path)} bytes long, expected 1 to ${L.pathBytes}`);
  }
  for (const path of [...p.mkdirs, ...p.unlinks, p.exe]) if (!isAbsolute(path)) bad(`the path ${q(path)} is not absolute`);
  for (const n of p.notify) {
    if (bytes(n.dir) > L.notifyDirBytes || !NOTIFY_DIR.test(n.dir)) {
      bad(`the notify directory ${q(n.dir)} is not an absolute path of at most ${L.notifyDirBytes} bytes ending in /podsock-XXXXXX`);
    }
  }
  if (!Number.isInteger(p.fds) || p.fds < 0 || p.fds > L.fds) bad(`the fd count ${p.fds} is not an integer from 0 to ${L.fds}`);
  for (const [i, a] of p.argv.entries()) if (bytes(a) > L.wordBytes) bad(`argument ${i} is ${bytes(a)} bytes long, expected at most ${L.wordBytes}`);
  for (const [k, v] of Object.entries(p.env)) {
    checkVarName(k, 'write a plan for podsock-launch');
    if (bytes(k) + 1 + bytes(v) > L.wordBytes) bad(`the variable ${q(k)} is ${bytes(k) + 1 + bytes(v)} bytes long, expected at most ${L.wordBytes}`);
  }
}

/** The plan file's bytes (format and bounds in native/plan.h): PodsockError for a plan podsock-launch would refuse. */
export function planBytes(p: PlanInput): Buffer {
  checkPlanBounds(p);
  const t: string[] = ['podsock-plan', '1'];
  for (const f of p.checkFiles) t.push('file', f, fileSignature(f));
  for (const d of p.mkdirs) t.push('mkdir', d);
  for (const f of p.unlinks) t.push('unlink', f);
  for (const n of p.notify) t.push('notify', n.dir, n.mode.toString(8));
  t.push('fds', String(p.fds), 'exe', p.exe);
  for (const a of p.argv) t.push('arg', a);
  for (const [k, v] of Object.entries(p.env)) {
    const entry = `${k}=${v}`;
    if (!PASSED_PREFIXES.some((x) => entry.startsWith(x))) t.push('env', entry);
  }
  for (const s of t) if (s.includes('\0')) throw new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot write a plan for podsock-launch: a value contains a NUL byte: ${q(s)}`);
  const bytes = Buffer.from(`${t.join('\0')}\0`, 'utf8');
  if (bytes.length > PLAN_LIMITS.bytes) throw new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot write a plan for podsock-launch: it is ${bytes.length} bytes long, expected at most ${PLAN_LIMITS.bytes}`);
  return bytes;
}

/**
 * Write the plan atomically, replacing the old one: a private file (private-files.ts) in podsock's state
 * directory, which is made private first (throws PODSOCK_ERR_PRIVATE_DIR when another user's).
 */
export function writePlan(path: string, bytes: Buffer): void {
  if (!isAbsolute(path)) throw new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot write the plan for podsock-launch at ${q(path)}: expected an absolute path`);
  privateDir(dirname(path), STATE_DIR_LEVELS);
  writePrivateFile(path, bytes);
}

/** Remove the plan (the name only: never what a symbolic link there points to). Never throws. */
export function removePlan(path: string): void {
  try {
    removePrivateFile(path);
  } catch {
    // A directory planted at the plan's name: podsock-launch refuses anything but a private file.
  }
}
