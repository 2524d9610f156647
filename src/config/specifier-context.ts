/**
 * The SpecifierContext (specifiers.ts) of the running process: the values systemd would give the
 * specifiers of the unit podsock runs in. The one module of config/ that asks the operating system
 * (os, /etc, /proc); every value that needs a file is read only when a specifier uses it.
 *
 * - The unit: the unit this process runs in (process-unit.ts, as sd_pid_get_unit(3) finds it from
 *   /proc/self/cgroup) when it is a .service; otherwise podsock runs standalone (a terminal's scope,
 *   a container) and the unit is `NAME.service`.
 * - The manager: a user manager when MANAGERPID is set (systemd.exec(5): a user manager sets it for
 *   its processes) or the uid is not 0; otherwise the system manager. So a root podsock under
 *   `systemd --user` gets the user manager's %t, %S, %C, %L and %E, as systemd would give them.
 * - %h, %s: $HOME and $SHELL when absolute, else '/root' and '/bin/sh' for root, else the passwd
 *   entry (get_home_dir() and get_shell(), systemd src/basic/user-util.c). %u, %g: the names of the
 *   uid and gid in /etc/passwd and /etc/group, or the number (uid_to_name()).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

import { unitFromCgroup } from './process-unit.js';
import type { SpecifierContext } from './specifiers.js';

/** What specifierContext() needs; the CLI passes process values, tests their own. */
export interface ProcessFacts {
  env: NodeJS.ProcessEnv;
  uid: number;
  /** Defaults to process.getgid(). */
  gid?: number;
  /** The unit when none is found: `NAME.service`. */
  fallbackUnit: string;
  /** The unit to use instead of looking for one (`podsock check` names the unit it checks). */
  unit?: string;
  /** Reads a file as text (defaults to readFileSync); tests give their own /proc and /etc. */
  readText?: (path: string) => string;
}

// architecture_to_string() names for Node's process.arch.
const ARCHITECTURES: Readonly<Record<string, string>> = {
  x64: 'x86-64',
  ia32: 'x86',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: os.endianness() === 'LE' ? 'ppc64-le' : 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loongarch64',
  mips: 'mips',
  mipsel: 'mips-le',
};

/** KEY=VALUE lines with optional quotes (os-release(5), machine-info(5)). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m === null) continue;
    let v = (m[2] as string).trim();
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.endsWith(v[0])) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    out[m[1] as string] = v;
  }
  return out;
}

/** The name field of the colon-separated database line whose third field is `id`, or the number. */
function nameOf(db: string, id: number, read: (p: string) => string): string {
  try {
    for (const line of read(db).split('\n')) {
      const f = line.split(':');
      if (f[2] === String(id) && f[0] !== undefined && f[0] !== '') return f[0];
    }
  } catch {
    // No database: the number, as uid_to_name() gives it.
  }
  return String(id);
}

function passwdField(uid: number, field: number, read: (p: string) => string): string | undefined {
  try {
    for (const line of read('/etc/passwd').split('\n')) {
      const f = line.split(':');
      if (f[2] === String(uid)) return f[field];
    }
  } catch {
    // No passwd file: no value.
  }
  return undefined;
}

/** A 128-bit id file (machine-id(5), boot_id) as 32 lower-case hex digits; throws when it is not one. */
function id128(path: string, read: (p: string) => string): string {
  const v = read(path).trim().replaceAll('-', '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(v)) throw new Error(`${path} does not hold a 128-bit id`);
  return v;
}

/** Memoises a value computed on first use. */
function lazy<T>(f: () => T): () => T {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = f();
      done = true;
    }
    return v;
  };
}

/** The context of this process (see the module comment). */
export function specifierContext(facts: ProcessFacts): SpecifierContext {
  const read = facts.readText ?? ((p: string) => readFileSync(p, 'utf8'));
  const { env, uid } = facts;
  const gid = facts.gid ?? process.getgid?.() ?? 0;
  const unit = lazy(() => {
    if (facts.unit !== undefined) return facts.unit;
    let found: string | null = null;
    try {
      found = unitFromCgroup(read('/proc/self/cgroup'));
    } catch {
      // No /proc: standalone.
    }
    return found !== null && found.endsWith('.service') ? found : facts.fallbackUnit;
  });
  const absEnv = (k: string): string | undefined => (env[k] !== undefined && (env[k] as string).startsWith('/') ? env[k] : undefined);
  const home = lazy(() => absEnv('HOME') ?? (uid === 0 ? '/root' : (passwdField(uid, 5, read) ?? '/')));
  const hostname = lazy(() => os.hostname());
  const osRelease = lazy(() => {
    for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
      try {
        return parseEnvFile(read(p));
      } catch {
        // Try the next one; with neither the fields are empty.
      }
    }
    return {};
  });
  return {
    get unit() {
      return unit();
    },
    userManager: env.MANAGERPID !== undefined || uid !== 0,
    uid,
    gid,
    get userName() {
      return uid === 0 ? 'root' : nameOf('/etc/passwd', uid, read);
    },
    get groupName() {
      return gid === 0 ? 'root' : nameOf('/etc/group', gid, read);
    },
    get home() {
      return home();
    },
    get shell() {
      return absEnv('SHELL') ?? (uid === 0 ? '/bin/sh' : (passwdField(uid, 6, read) ?? '/bin/sh'));
    },
    env: {
      XDG_RUNTIME_DIR: env.XDG_RUNTIME_DIR,
      XDG_STATE_HOME: env.XDG_STATE_HOME,
      XDG_CACHE_HOME: env.XDG_CACHE_HOME,
      XDG_CONFIG_HOME: env.XDG_CONFIG_HOME,
      TMPDIR: env.TMPDIR,
      TEMP: env.TEMP,
      TMP: env.TMP,
    },
    get hostname() {
      return hostname();
    },
    get prettyHostname() {
      let pretty: string | undefined;
      try {
        pretty = parseEnvFile(read('/etc/machine-info')).PRETTY_HOSTNAME;
      } catch {
        // No machine-info: the host name.
      }
      return pretty !== undefined && pretty !== '' ? pretty : hostname();
    },
    get machineId() {
      return id128('/etc/machine-id', read);
    },
    get bootId() {
      return id128('/proc/sys/kernel/random/boot_id', read);
    },
    get kernelRelease() {
      return os.release();
    },
    get architecture() {
      return ARCHITECTURES[process.arch] ?? process.arch;
    },
    get osRelease() {
      return osRelease();
    },
  };
}
