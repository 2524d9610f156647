/**
 * The [Podsock] section: podsock's own settings. Each key has a command-line flag of the same meaning
 * (FLAG_NAMES); a flag wins over the file. Values are validated here, once, into fully defaulted
 * settings. Errors name the flag (`--idle-timeout`) or `file:line` and the key; enum errors list every
 * allowed value.
 *
 * Keys:
 * - Mode=handover|proxy (default handover).
 * - Ready=started|notify|tcp|http|http:/PATH|healthy (default started in handover mode, tcp in proxy
 *   mode). tcp, http and healthy probe or watch the backend through podsock, so only proxy mode has them.
 * - IdleTimeout= time span, default 5min; "infinity" = never exit when idle; 0 = exit as soon as idle.
 * - StartTimeout= time span > 0, default 90s. StopTimeout= time span > 0, default 10s.
 * - Backend= required in proxy mode, refused in handover mode: one port ("8080") or name=port pairs
 *   ("web=8080 admin=8443"), where a name is a socket's FileDescriptorName=. Ports 1-65535.
 * - MaxConnections= integer 1..1000000, default 4096.
 * - ConnectionIdleTimeout= proxy mode only: a connection that moved no byte in either direction for this
 *   long is closed (both sides reset); time span, default off; "infinity" or 0 = off.
 */
import { PodsockError, q } from '../errors.js';
import { parseTimespan } from './timespan.js';
import type { UnitSection } from './unit-syntax.js';

/** The keys of [Podsock], which are also the names of LoadOptions.flags. */
export const PODSOCK_KEYS = ['Mode', 'Ready', 'IdleTimeout', 'StartTimeout', 'StopTimeout', 'Backend', 'MaxConnections', 'ConnectionIdleTimeout'] as const;
export type PodsockKey = (typeof PODSOCK_KEYS)[number];

/** The command-line flag for each key, used in messages. */
export const FLAG_NAMES: Readonly<Record<PodsockKey, string>> = {
  Mode: '--mode',
  Ready: '--ready',
  IdleTimeout: '--idle-timeout',
  StartTimeout: '--start-timeout',
  StopTimeout: '--stop-timeout',
  Backend: '--backend',
  MaxConnections: '--max-connections',
  ConnectionIdleTimeout: '--connection-idle-timeout',
};

/** How podsock decides that the container is ready. */
export type ReadySpec =
  | { kind: 'started' }
  | { kind: 'notify' }
  | { kind: 'tcp' }
  | { kind: 'http'; path: string }
  | { kind: 'healthy' };

/** One backend of proxy mode; a null name is the single default backend. */
export interface Backend {
  name: string | null;
  port: number;
}

/** The validated, defaulted [Podsock] settings. */
export interface PodsockSettings {
  mode: 'handover' | 'proxy';
  ready: ReadySpec;
  idleTimeoutMs: number | null;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  backends: Backend[];
  maxConnections: number;
  /** Proxy mode: close a connection idle (no bytes either way) this long; null = never (the default). */
  connectionIdleTimeoutMs: number | null;
  /** Where each key that was set in the file was set (flags are not listed). */
  keyLines: Partial<Record<PodsockKey, number>>;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_START_TIMEOUT_MS = 90_000;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 4096;
export const MAX_MAX_CONNECTIONS = 1_000_000;
/** Longest http readiness path. */
export const MAX_HTTP_PATH_LENGTH = 2048;
/** Most backends in one Backend= value. */
export const MAX_BACKENDS = 64;

const MODES = ['handover', 'proxy'] as const;
const READY_HANDOVER = ['started', 'notify'] as const;
const READY_ALL = ['started', 'notify', 'tcp', 'http', 'http:/PATH', 'healthy'] as const;

/** A value and where it came from, for messages. */
interface Setting {
  text: string;
  /** "--mode" or "/etc/podsock/web.container:4: Mode" */
  where: string;
  /** "/etc/podsock/web.container:4" for a file setting, null for a flag. */
  location: string | null;
}

function configError(where: string, message: string, details: Record<string, unknown>): PodsockError {
  return new PodsockError('PODSOCK_ERR_CONFIG', `${where}: ${message}`, { details: { where, ...details } });
}

function listOf(values: readonly string[]): string {
  return values.map((v) => q(v)).join(', ');
}

function parseMode(s: Setting): 'handover' | 'proxy' {
  if (s.text === 'handover' || s.text === 'proxy') return s.text;
  throw configError(s.where, `invalid mode ${q(s.text)} (allowed: ${listOf(MODES)})`, { value: s.text });
}

// RFC 3986 path characters plus '?' and the query; no whitespace or control characters.
const HTTP_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$/;

function parseReady(s: Setting, mode: 'handover' | 'proxy', modeWhere: string): ReadySpec {
  const t = s.text;
  let spec: ReadySpec;
  if (t === 'started' || t === 'notify' || t === 'tcp' || t === 'healthy') spec = { kind: t };
  else if (t === 'http') spec = { kind: 'http', path: '/' };
  else if (t.startsWith('http:')) {
    const path = t.slice('http:'.length);
    if (path.length > MAX_HTTP_PATH_LENGTH || !HTTP_PATH.test(path)) {
      throw configError(
        s.where,
        `invalid readiness ${q(t)}: the path after 'http:' must start with '/' and contain no spaces (at most ${MAX_HTTP_PATH_LENGTH} characters)`,
        { value: t },
      );
    }
    spec = { kind: 'http', path };
  } else {
    const allowed = mode === 'proxy' ? READY_ALL : READY_HANDOVER;
    throw configError(s.where, `invalid readiness ${q(t)} (allowed with mode ${q(mode)}: ${listOf(allowed)})`, { value: t });
  }
  if (mode === 'handover' && spec.kind !== 'started' && spec.kind !== 'notify') {
    throw configError(
      s.where,
      `readiness ${q(t)} needs proxy mode, but the mode is 'handover' (${modeWhere}); with mode 'handover' use one of ${listOf(READY_HANDOVER)}`,
      { value: t },
    );
  }
  return spec;
}

function parseSpan(s: Setting, key: PodsockKey, allowInfinity: boolean, allowZero: boolean): number | null {
  let ms: number | null;
  try {
    ms = parseTimespan(s.text, s.location === null ? s.where : key);
  } catch (err) {
    if (s.location === null || !(err instanceof PodsockError)) throw err;
    // Put file:line in front, keep the code and the original as cause.
    throw new PodsockError(err.code, `${s.location}: ${err.message}`, { cause: err, details: { ...err.details, where: s.where } });
  }
  if (ms === null && !allowInfinity) {
    throw new PodsockError('PODSOCK_ERR_TIMESPAN', `${s.where}: 'infinity' is not allowed here; give a time span such as '90s' or '5min'`, {
      details: { where: s.where, value: s.text },
    });
  }
  if (ms === 0 && !allowZero) {
    throw new PodsockError('PODSOCK_ERR_TIMESPAN', `${s.where}: must be greater than 0, got ${q(s.text)}`, {
      details: { where: s.where, value: s.text },
    });
  }
  return ms;
}

const PORT = /^[0-9]{1,5}$/;
// systemd's fdname_is_valid(): printable ASCII without ':' (and we also exclude '=' and spaces,
// which this syntax uses), at most 255 characters.
const FD_NAME = /^[\x21-\x39\x3b\x3c\x3e-\x7e]{1,255}$/;

function parsePort(text: string, s: Setting): number {
  const n = PORT.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    throw configError(s.where, `invalid port ${q(text)} in ${q(s.text)} (expected 1-65535)`, { value: s.text });
  }
  return n;
}

function parseBackends(s: Setting): Backend[] {
  const words = s.text.split(/[ \t]+/).filter((w) => w !== '');
  if (words.length > MAX_BACKENDS) {
    throw configError(s.where, `too many backends (${words.length}; at most ${MAX_BACKENDS})`, { value: s.text });
  }
  const single = words[0];
  if (words.length === 1 && single !== undefined && !single.includes('=')) {
    return [{ name: null, port: parsePort(single, s) }];
  }
  const seen = new Set<string>();
  return words.map((w) => {
    const eq = w.indexOf('=');
    const name = w.slice(0, eq);
    if (eq <= 0 || !FD_NAME.test(name)) {
      throw configError(
        s.where,
        `invalid backend ${q(w)} in ${q(s.text)} (expected one port such as '8080', or NAME=PORT pairs such as 'web=8080 admin=8443', NAME being a socket's FileDescriptorName=)`,
        { value: s.text },
      );
    }
    if (seen.has(name)) throw configError(s.where, `backend ${q(name)} is given twice in ${q(s.text)}`, { value: s.text });
    seen.add(name);
    return { name, port: parsePort(w.slice(eq + 1), s) };
  });
}

function parseMaxConnections(s: Setting): number {
  const n = /^[0-9]{1,7}$/.test(s.text) ? Number(s.text) : NaN;
  if (!(n >= 1 && n <= MAX_MAX_CONNECTIONS)) {
    throw configError(s.where, `invalid connection limit ${q(s.text)} (expected an integer from 1 to ${MAX_MAX_CONNECTIONS})`, {
      value: s.text,
    });
  }
  return n;
}

/**
 * Resolves the [Podsock] settings from the section (may be undefined), the file name for messages
 * and the flags (which win). Unknown keys in the section are errors naming file, line and key.
 * Throws PodsockError: 'PODSOCK_ERR_CONFIG' for bad values, 'PODSOCK_ERR_TIMESPAN' for bad time spans.
 */
export function resolvePodsockSettings(
  section: UnitSection | undefined,
  file: string | null,
  flags: Partial<Record<PodsockKey, string>>,
): PodsockSettings {
  const fromFile = new Map<PodsockKey, Setting>();
  const keyLines: Partial<Record<PodsockKey, number>> = {};
  for (const entry of section?.entries ?? []) {
    if (!(PODSOCK_KEYS as readonly string[]).includes(entry.key)) {
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG',
        `${file ?? '?'}:${entry.line}: unknown key ${q(entry.key)} in section [Podsock] (known keys: ${PODSOCK_KEYS.join(', ')})`,
        { details: { file, line: entry.line, section: 'Podsock', key: entry.key } },
      );
    }
    const key = entry.key as PodsockKey;
    // Single-value settings: the last assignment wins, as in systemd.
    const location = `${file ?? '?'}:${entry.line}`;
    fromFile.set(key, { text: entry.value, where: `${location}: ${key}`, location });
    keyLines[key] = entry.line;
  }
  const get = (key: PodsockKey): Setting | undefined => {
    const flag = flags[key];
    if (flag !== undefined) return { text: flag, where: FLAG_NAMES[key], location: null };
    return fromFile.get(key);
  };

  const modeSetting = get('Mode');
  const mode = modeSetting === undefined ? 'handover' : parseMode(modeSetting);
  const modeWhere = modeSetting === undefined ? 'the default' : `set by ${modeSetting.where}`;

  const readySetting = get('Ready');
  const ready: ReadySpec =
    readySetting === undefined ? (mode === 'proxy' ? { kind: 'tcp' } : { kind: 'started' }) : parseReady(readySetting, mode, modeWhere);

  const idle = get('IdleTimeout');
  const start = get('StartTimeout');
  const stop = get('StopTimeout');
  const idleTimeoutMs = idle === undefined ? DEFAULT_IDLE_TIMEOUT_MS : parseSpan(idle, 'IdleTimeout', true, true);
  const startTimeoutMs = start === undefined ? DEFAULT_START_TIMEOUT_MS : (parseSpan(start, 'StartTimeout', false, false) as number);
  const stopTimeoutMs = stop === undefined ? DEFAULT_STOP_TIMEOUT_MS : (parseSpan(stop, 'StopTimeout', false, false) as number);

  const backendSetting = get('Backend');
  let backends: Backend[] = [];
  if (backendSetting !== undefined) {
    if (mode !== 'proxy') {
      throw configError(backendSetting.where, `a backend is only used in proxy mode, but the mode is 'handover' (${modeWhere})`, {
        value: backendSetting.text,
      });
    }
    backends = parseBackends(backendSetting);
  }

  if (mode === 'proxy' && backendSetting === undefined) {
    throw configError(
      modeSetting?.where ?? 'Mode',
      `proxy mode needs the container port to forward to: set Backend= in [Podsock] (e.g. 'Backend=8080') or --backend`,
      { value: 'proxy' },
    );
  }

  const maxSetting = get('MaxConnections');
  const maxConnections = maxSetting === undefined ? DEFAULT_MAX_CONNECTIONS : parseMaxConnections(maxSetting);

  const connIdleSetting = get('ConnectionIdleTimeout');
  let connectionIdleTimeoutMs: number | null = null;
  if (connIdleSetting !== undefined) {
    if (mode !== 'proxy') {
      throw configError(
        connIdleSetting.where,
        `a connection idle timeout only applies in proxy mode (in handover mode the container owns the connections), but the mode is 'handover' (${modeWhere})`,
        { value: connIdleSetting.text },
      );
    }
    // 0 and 'infinity' both mean off: no connection is ever closed for being idle.
    connectionIdleTimeoutMs = parseSpan(connIdleSetting, 'ConnectionIdleTimeout', true, true) || null;
  }

  return { mode, ready, idleTimeoutMs, startTimeoutMs, stopTimeoutMs, backends, maxConnections, connectionIdleTimeoutMs, keyLines };
}
