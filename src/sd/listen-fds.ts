/**
 * The socket-activation environment: LISTEN_PID / LISTEN_PIDFDID / LISTEN_FDS / LISTEN_FDNAMES, read with
 * exactly the semantics of sd_listen_fds_with_names(3) (systemd src/libsystemd/sd-daemon/sd-daemon.c):
 *
 * - LISTEN_PID unset → no fds; unparsable → error; not our pid → no fds ("Is this for us?").
 * - LISTEN_PIDFDID set and the caller can tell its own pidfd id → must match, else no fds.
 * - LISTEN_FDS unset → no fds; not a positive integer (or overflowing) → error (-EINVAL in libsystemd).
 * - LISTEN_FDNAMES split on ':' keeping empty names; present with a different count → error;
 *   absent → every fd is named 'unknown'.
 *
 * Pure: the environment, the pid and the fd inspector are parameters; only the CLI touches process.*.
 */
import { PodsockError, q } from '../errors.js';

/** SD_LISTEN_FDS_START: the first passed fd (sd-daemon.h). */
export const SD_LISTEN_FDS_START = 3;

/** The most fds podsock believes it can have been passed (fs.nr_open's default). */
export const MAX_LISTEN_FDS = 1_048_576;

// What an fd is, as told by getsockopt/getsockname. A type-only import: this module stays pure and
// never loads the addon; the inspector itself is a parameter.
import type { FdInfo } from '../native/fds.js';

export type { FdInfo };

/** One inherited fd with its name and what it is. */
export interface ListenFd extends FdInfo {
  name: string;
}

const LISTEN_VARS = ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/**
 * Variables that belong to podsock's own process and must never reach a child: podman hands on whatever
 * sits at fds 3.. whenever LISTEN_FDS is set, without looking at LISTEN_PID (containers/podman issue 20968).
 */
// PODSOCK_PLAN and PODSOCK_PRESTART are podsock-launch's word to podsock (runtime/prestart.ts).
const PRIVATE_VARS = [...LISTEN_VARS, 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'PODSOCK_PLAN', 'PODSOCK_PRESTART'] as const;

// libsystemd parses with safe_atoi/parse_pid: decimal digits only here (we are stricter about signs
// and whitespace, which systemd never writes).
const DECIMAL = /^[0-9]{1,10}$/;

function parsePositive(name: string, raw: string, expected: string): number {
  const n = DECIMAL.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n > 0x7fffffff - SD_LISTEN_FDS_START) {
    throw new PodsockError(
      'PODSOCK_ERR_LISTEN_ENV',
      `Invalid ${name}=${q(raw)}: expected ${expected}`,
      { details: { variable: name, value: raw } },
    );
  }
  return n;
}

export interface ListenEnvResult {
  /** fd numbers 3.. in order, with their names. Empty when the variables are absent or not for us. */
  fds: Array<{ fd: number; name: string }>;
  /** Why the list is empty when it is (for a helpful message), or null. */
  reason: string | null;
}

/**
 * Read LISTEN_* for process `pid`. `pidfdId` is the caller's own pidfd inode id when it can tell it
 * (kernel ≥ 6.9 with pidfs), or null to skip that check as libsystemd does on older kernels.
 */
export function parseListenEnv(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
  pidfdId: bigint | null = null,
): ListenEnvResult {
  const rawPid = env.LISTEN_PID;
  if (rawPid === undefined) return { fds: [], reason: 'LISTEN_PID is not set' };
  const listenPid = parsePositive('LISTEN_PID', rawPid, 'a process id (a positive integer)');
  if (listenPid !== pid) {
    // sd_listen_fds(3): "Is this for us?" — the variables were meant for another process.
    return { fds: [], reason: `LISTEN_PID=${listenPid} names another process (this is ${pid})` };
  }

  const rawPidfdId = env.LISTEN_PIDFDID;
  if (rawPidfdId !== undefined && pidfdId !== null) {
    if (!/^[0-9]{1,20}$/.test(rawPidfdId)) {
      throw new PodsockError('PODSOCK_ERR_LISTEN_ENV', `Invalid LISTEN_PIDFDID=${q(rawPidfdId)}: expected a pidfd inode id (an unsigned integer)`);
    }
    if (BigInt(rawPidfdId) !== pidfdId) {
      return { fds: [], reason: `LISTEN_PIDFDID=${rawPidfdId} names another process` };
    }
  }

  const rawFds = env.LISTEN_FDS;
  if (rawFds === undefined) return { fds: [], reason: 'LISTEN_FDS is not set' };
  const n = parsePositive('LISTEN_FDS', rawFds, 'the number of passed fds (a positive integer)');
  // No process can hold more fds than fs.nr_open allows (1048576 by default); a larger count cannot be
  // real and would only make podsock allocate a name per fd.
  if (n > MAX_LISTEN_FDS) {
    throw new PodsockError(
      'PODSOCK_ERR_LISTEN_ENV',
      `Invalid LISTEN_FDS=${q(rawFds)}: expected at most ${MAX_LISTEN_FDS} fds (the kernel's fs.nr_open default)`,
      { details: { variable: 'LISTEN_FDS', value: rawFds } },
    );
  }

  const rawNames = env.LISTEN_FDNAMES;
  let names: string[];
  if (rawNames === undefined) {
    names = Array.from({ length: n }, () => 'unknown');
  } else {
    // EXTRACT_DONT_COALESCE_SEPARATORS: empty names are kept, so "a::b" is three names.
    names = rawNames.split(':');
    if (names.length !== n) {
      throw new PodsockError(
        'PODSOCK_ERR_LISTEN_ENV',
        `LISTEN_FDNAMES=${q(rawNames)} has ${names.length} name(s) but LISTEN_FDS=${n}: expected one name per fd`,
        { details: { LISTEN_FDS: rawFds, LISTEN_FDNAMES: rawNames } },
      );
    }
  }
  return { fds: names.map((name, i) => ({ fd: SD_LISTEN_FDS_START + i, name })), reason: null };
}

/**
 * Read LISTEN_* and describe each fd with `inspect` (native getsockopt/getsockname in production,
 * a table in tests). An fd that cannot be inspected (closed) is an error naming it.
 */
export function listenFdsWithNames(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
  inspect: (fd: number) => FdInfo,
  pidfdId: bigint | null = null,
): { fds: ListenFd[]; reason: string | null } {
  const parsed = parseListenEnv(env, pid, pidfdId);
  const fds = parsed.fds.map(({ fd, name }) => {
    let info: FdInfo;
    try {
      info = inspect(fd);
    } catch (err) {
      throw new PodsockError(
        'PODSOCK_ERR_LISTEN_ENV',
        `LISTEN_FDS promises fd ${fd} (${q(name)}) but it cannot be used: ${(err as Error).message}`,
        { cause: err, details: { fd, name } },
      );
    }
    return { ...info, fd, name };
  });
  return { fds, reason: parsed.reason };
}

/** A copy of `env` without LISTEN_*, NOTIFY_SOCKET and WATCHDOG_* (for every child process). */
export function scrubbedEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !(PRIVATE_VARS as readonly string[]).includes(k)) out[k] = v;
  }
  return out;
}

/** One line describing an fd for logs and status: "http: TCP 127.0.0.1:8080 (listening)". */
export function describeFd(f: ListenFd): string {
  const kind =
    f.family === 'unix'
      ? `unix ${f.type}`
      : f.family === 'inet' || f.family === 'inet6'
        ? `${f.type === 'dgram' ? 'UDP' : f.type === 'stream' ? 'TCP' : f.type}${f.family === 'inet6' ? 'v6' : ''}`
        : 'non-socket';
  const addr =
    f.family === 'unix'
      ? ` ${f.path === '' || f.path === undefined ? '(unnamed)' : f.path}`
      : f.family === 'inet' || f.family === 'inet6'
        ? ` ${f.family === 'inet6' ? `[${f.host}]` : f.host}:${f.port}`
        : '';
  return `${f.name}: ${kind}${addr}${f.listening ? ' (listening)' : ''}`;
}
