/**
 * systemd's %-specifiers (systemd.unit(5), "Specifiers"), expanded in .container values the way
 * systemd expands them in the ExecStart= line Quadlet writes from the same file: so `%h`, `%i` or
 * `%n` in a Quadlet .container file mean the same under podsock.
 *
 * The rules are specifier_printf()'s (systemd src/shared/specifier.c):
 * - `%%` is a literal '%';
 * - '%' followed by a letter or digit that is not a known specifier is an error (systemd refuses the
 *   setting, -EBADSLT);
 * - '%' followed by anything else stays as it is ('%-' is '%-'), and so does a '%' at the end.
 *
 * The values come from a SpecifierContext, so tests give every value; specifier-context.ts builds
 * one for the running process. The unit-name specifiers follow src/core/unit-printf.c and
 * src/basic/unit-name.c: `%i` of 'podsock@web.service' is 'web', `%I` unescapes it ('-' is '/',
 * '\xNN' a byte), `%j` is the part of the prefix after its last '-', `%f` is the unescaped instance
 * (or prefix) as an absolute path.
 *
 * Pure; throws SpecifierError (a plain Error) with the reason; the caller adds file, line and key.
 */

/** Everything a specifier can expand to. Values that cost a file read may be getters. */
export interface SpecifierContext {
  /** The unit podsock runs in, e.g. 'podsock@web.service'. */
  readonly unit: string;
  /** True under a user manager (systemd --user): %t %S %C %L %E %d are the user's directories. */
  readonly userManager: boolean;
  readonly uid: number;
  readonly gid: number;
  readonly userName: string;
  readonly groupName: string;
  /** $HOME of the manager, as get_home_dir() finds it. */
  readonly home: string;
  readonly shell: string;
  /** XDG_RUNTIME_DIR, XDG_STATE_HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME, TMPDIR, TEMP, TMP. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hostname: string;
  /** PRETTY_HOSTNAME of /etc/machine-info, or the host name. */
  readonly prettyHostname: string;
  /** 32 lower-case hex digits. */
  readonly machineId: string;
  /** 32 lower-case hex digits. */
  readonly bootId: string;
  readonly kernelRelease: string;
  /** systemd's name for the architecture ('x86-64', 'arm64', ...). */
  readonly architecture: string;
  /** The fields of os-release(5). */
  readonly osRelease: Readonly<Record<string, string>>;
}

/** Why a value cannot be expanded; `specifier` is the letter (or null for a too long result). */
export class SpecifierError extends Error {
  constructor(
    message: string,
    readonly specifier: string | null,
  ) {
    super(message);
    this.name = 'SpecifierError';
  }
}

/** Longest expansion accepted (the longest line podsock reads, unit-syntax.ts MAX_LINE_LENGTH). */
export const MAX_EXPANDED_LENGTH = 64 * 1024;

/** Unit name parts as unit_name_to_prefix() / unit_name_to_instance() split them. */
export interface UnitNameParts {
  /** Without the type suffix: 'podsock@web' (%N). */
  full: string;
  /** Before '@' (or the whole name without suffix): 'podsock' (%p). */
  prefix: string;
  /** After '@', '' when there is none (%i). */
  instance: string;
  hasInstance: boolean;
}

/** Splits a unit name such as 'podsock@web.service'. */
export function unitNameParts(unit: string): UnitNameParts {
  const dot = unit.lastIndexOf('.');
  const full = dot <= 0 ? unit : unit.slice(0, dot);
  const at = full.indexOf('@');
  if (at === -1) return { full, prefix: full, instance: '', hasInstance: false };
  return { full, prefix: full.slice(0, at), instance: full.slice(at + 1), hasInstance: true };
}

/** unit_name_unescape(): '-' is '/', '\xNN' is that byte; anything else as is. */
export function unitNameUnescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '-') {
      bytes.push(0x2f);
    } else if (c === '\\') {
      const hex = s.slice(i + 1, i + 4);
      if (!/^x[0-9a-fA-F]{2}$/.test(hex)) throw new SpecifierError(`invalid escape ${JSON.stringify(s.slice(i, i + 4))} in unit name part ${JSON.stringify(s)}`, null);
      bytes.push(parseInt(hex.slice(1), 16));
      i += 3;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** unit_name_path_unescape(): the unescaped name as an absolute, normalized path ('-' alone is '/'). */
export function unitNamePathUnescape(s: string): string {
  if (s === '') throw new SpecifierError('the unit name part is empty, so it is no path', null);
  if (s === '-') return '/';
  const w = unitNameUnescape(s);
  const path = `/${w}`;
  if (w.startsWith('/') || w.endsWith('/') || path.split('/').slice(1).some((c) => c === '' || c === '.' || c === '..')) {
    throw new SpecifierError(`unit name part ${JSON.stringify(s)} is not a normalized path once unescaped (${JSON.stringify(path)})`, null);
  }
  return path;
}

/** An absolute path from the environment, as systemd accepts one ($XDG_* must be absolute). */
function absolute(v: string | undefined): string | undefined {
  return v !== undefined && v.startsWith('/') ? v : undefined;
}

/** tmp_dir()/var_tmp_dir(): the first of $TMPDIR, $TEMP, $TMP that is an absolute path, else the default. */
function tmpDir(ctx: SpecifierContext, fallback: string): string {
  for (const k of ['TMPDIR', 'TEMP', 'TMP']) {
    const v = absolute(ctx.env[k]);
    if (v !== undefined) return v;
  }
  return fallback;
}

function runtimeDir(ctx: SpecifierContext): string {
  if (!ctx.userManager) return '/run';
  const v = absolute(ctx.env.XDG_RUNTIME_DIR);
  if (v === undefined) throw new SpecifierError('%t needs XDG_RUNTIME_DIR, which is not set to an absolute path', 't');
  return v;
}

function stateDir(ctx: SpecifierContext): string {
  return ctx.userManager ? (absolute(ctx.env.XDG_STATE_HOME) ?? `${ctx.home}/.local/state`) : '/var/lib';
}

/** The specifiers, each a function of the context (called only when the letter is used). */
const TABLE: Readonly<Record<string, (ctx: SpecifierContext) => string>> = {
  // Unit names (unit-printf.c).
  n: (c) => c.unit,
  N: (c) => unitNameParts(c.unit).full,
  p: (c) => unitNameParts(c.unit).prefix,
  P: (c) => unitNameUnescape(unitNameParts(c.unit).prefix),
  i: (c) => unitNameParts(c.unit).instance,
  I: (c) => unitNameUnescape(unitNameParts(c.unit).instance),
  j: (c) => lastComponent(unitNameParts(c.unit).prefix),
  J: (c) => unitNameUnescape(lastComponent(unitNameParts(c.unit).prefix)),
  f: (c) => {
    const u = unitNameParts(c.unit);
    return unitNamePathUnescape(u.hasInstance ? u.instance : u.prefix);
  },
  // Directories of the manager (system or user).
  t: runtimeDir,
  S: stateDir,
  C: (c) => (c.userManager ? (absolute(c.env.XDG_CACHE_HOME) ?? `${c.home}/.cache`) : '/var/cache'),
  L: (c) => (c.userManager ? `${stateDir(c)}/log` : '/var/log'),
  E: (c) => (c.userManager ? (absolute(c.env.XDG_CONFIG_HOME) ?? `${c.home}/.config`) : '/etc'),
  T: (c) => tmpDir(c, '/tmp'),
  V: (c) => tmpDir(c, '/var/tmp'),
  d: (c) => `${runtimeDir(c)}/credentials/${c.unit}`,
  // The user running the manager.
  h: (c) => c.home,
  s: (c) => c.shell,
  U: (c) => String(c.uid),
  u: (c) => c.userName,
  G: (c) => String(c.gid),
  g: (c) => c.groupName,
  // The host.
  H: (c) => c.hostname,
  l: (c) => c.hostname.split('.')[0] as string,
  q: (c) => c.prettyHostname,
  m: (c) => c.machineId,
  b: (c) => c.bootId,
  v: (c) => c.kernelRelease,
  a: (c) => c.architecture,
  o: (c) => c.osRelease.ID ?? '',
  w: (c) => c.osRelease.VERSION_ID ?? '',
  B: (c) => c.osRelease.BUILD_ID ?? '',
  W: (c) => c.osRelease.VARIANT_ID ?? '',
  M: (c) => c.osRelease.IMAGE_ID ?? '',
  A: (c) => c.osRelease.IMAGE_VERSION ?? '',
};

/** Specifiers systemd knows that podsock cannot give, with the reason. */
const UNAVAILABLE: Readonly<Record<string, string>> = {
  y: "'%y' is the path of the unit file, which podsock does not know; write the path",
  Y: "'%Y' is the directory of the unit file, which podsock does not know; write the path",
};

/** specifier_last_component(): the prefix after its last '-', or the whole prefix. */
function lastComponent(prefix: string): string {
  const dash = prefix.lastIndexOf('-');
  return dash === -1 ? prefix : prefix.slice(dash + 1);
}

/** The specifier letters podsock expands, sorted (for messages and the README). */
export const SPECIFIERS: readonly string[] = Object.keys(TABLE).sort();

const ALNUM = /^[A-Za-z0-9]$/;

/**
 * Expands every specifier in `text` (see the module comment). Throws SpecifierError for an unknown
 * specifier, one podsock cannot give, a value that cannot be found (no XDG_RUNTIME_DIR for %t, no
 * /etc/machine-id for %m) or a result longer than MAX_EXPANDED_LENGTH.
 */
export function expandSpecifiers(text: string, ctx: SpecifierContext): string {
  if (!text.includes('%')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c !== '%') {
      out += c;
    } else if (i + 1 === text.length) {
      out += '%'; // a stray '%' at the end stays
    } else {
      const s = text[++i] as string;
      const lookup = TABLE[s];
      if (s === '%') out += '%';
      else if (lookup !== undefined) out += value(lookup, s, ctx);
      else if (UNAVAILABLE[s] !== undefined) throw new SpecifierError(UNAVAILABLE[s], s);
      else if (ALNUM.test(s)) throw new SpecifierError(`unknown specifier '%${s}' (write '%%' for a literal '%'; see systemd.unit(5), "Specifiers")`, s);
      else out += `%${s}`;
    }
    if (out.length > MAX_EXPANDED_LENGTH) throw new SpecifierError(`the value is longer than ${MAX_EXPANDED_LENGTH} characters once its specifiers are expanded`, null);
  }
  return out;
}

function value(lookup: (ctx: SpecifierContext) => string, s: string, ctx: SpecifierContext): string {
  try {
    return lookup(ctx);
  } catch (err) {
    if (err instanceof SpecifierError) throw err;
    throw new SpecifierError(`cannot expand '%${s}': ${(err as Error).message}`, s);
  }
}
