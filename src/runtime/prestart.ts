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
import { statSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { PodsockError, q } from '../errors.js';
import { privateDir, removePrivateFile, STATE_DIR_LEVELS, writePrivateFile } from '../private-files.js';

/** Per-activation variables: never written into a plan; podsock-launch copies them from its own environment. */
const PASSED_PREFIXES = ['INVOCATION_ID=', 'JOURNAL_STREAM=', 'SYSTEMD_EXEC_PID=', 'TRIGGER_', 'MONITOR_'] as const;
/** Longest PODSOCK_PRESTART podsock reads (launch.c writes at most 8 KiB). */
const PRESTART_MAX = 8192;
const NOTIFY_DIR = /^\/.*\/podsock-[A-Za-z0-9]{6}$/;

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
    else if (key === 'digest' && /^[0-9a-f]{16}$/.test(value)) digest = value;
    else if (key === 'notify') {
      const m = /^([0-9]{1,9}):(.+)$/.exec(value);
      if (m === null || Number(m[1]) < 3 || !NOTIFY_DIR.test(m[2] as string)) return { kind: 'none', reason: `bad notify entry in PODSOCK_PRESTART: ${word}` };
      notify.push({ fd: Number(m[1]), dir: m[2] as string });
    } else return { kind: 'none', reason: `unexpected ${JSON.stringify(word)} in PODSOCK_PRESTART` };
  }
  if (pid === 0 || digest === '' || notify.length !== 2) return { kind: 'none', reason: `PODSOCK_PRESTART is incomplete: ${raw}` };
  return { kind: 'started', pid, digest, notify };
}

function fnv32(h: number, bytes: Uint8Array): number {
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

const NUL = new Uint8Array([0]);
const FNV_OFFSET = 2166136261;

/**
 * The digest of a podman command as launch.c computes it: FNV-1a (32 bits) over the executable and
 * argv, each NUL-terminated, then the XOR of each `NAME=VALUE`'s own FNV-1a, so that the order of the
 * environment does not matter. LISTEN_PID (set in the child) is not part of it.
 */
export function commandDigest(exe: string, argv: readonly string[], env: Readonly<Record<string, string>>): string {
  let h = FNV_OFFSET;
  for (const s of [exe, ...argv]) h = fnv32(fnv32(h, Buffer.from(s, 'utf8')), NUL);
  let x = 0;
  for (const [k, v] of Object.entries(env)) if (k !== 'LISTEN_PID') x = (x ^ fnv32(FNV_OFFSET, Buffer.from(`${k}=${v}`, 'utf8'))) >>> 0;
  return h.toString(16).padStart(8, '0') + x.toString(16).padStart(8, '0');
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

/** The plan file's bytes (format in native/launch.c). */
export function planBytes(p: PlanInput): Buffer {
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
  return Buffer.from(`${t.join('\0')}\0`, 'utf8');
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
