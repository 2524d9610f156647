/**
 * The value parsers of the [Podsock] keys (podsock-keys.ts says which key uses which), and the value
 * types they produce. Each takes the text as written and where it was written, and throws a
 * PodsockError naming that place: 'PODSOCK_ERR_CONFIG' for a bad value, 'PODSOCK_ERR_TIMESPAN' for
 * a bad time span. Pure.
 */
import { PodsockError, q } from '../errors.js';
import { parseTimespan } from './timespan.js';

export type Mode = 'handover' | 'proxy';

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

/** A value and where it came from, for messages. */
export interface Setting {
  text: string;
  /** The key, "IdleTimeout", named by time span messages of a file setting. */
  key: string;
  /** "--mode" or "/etc/podsock/web.container:4: Mode" */
  where: string;
  /** "/etc/podsock/web.container:4" for a file setting, null for a flag. */
  location: string | null;
}

/** The mode the other keys are read against, and where it was set, for messages. */
export interface ModeContext {
  mode: Mode;
  /** "the default" or "set by --mode". */
  modeWhere: string;
  /** Where Mode was set ("--mode", "file:2: Mode"), or null for the default. */
  modeSetAt: string | null;
}

export const MAX_MAX_CONNECTIONS = 1_000_000;
/** Longest http readiness path. */
export const MAX_HTTP_PATH_LENGTH = 2048;
/** Most backends in one Backend= value. */
export const MAX_BACKENDS = 64;

const MODES = ['handover', 'proxy'] as const;
const READY_HANDOVER = ['started', 'notify'] as const;
const READY_ALL = ['started', 'notify', 'tcp', 'http', 'http:/PATH', 'healthy'] as const;

export function configError(where: string, message: string, details: Record<string, unknown>): PodsockError {
  return new PodsockError('PODSOCK_ERR_CONFIG', `${where}: ${message}`, { details: { where, ...details } });
}

function listOf(values: readonly string[]): string {
  return values.map((v) => q(v)).join(', ');
}

export function parseMode(s: Setting): Mode {
  if (s.text === 'handover' || s.text === 'proxy') return s.text;
  throw configError(s.where, `invalid mode ${q(s.text)} (allowed: ${listOf(MODES)})`, { value: s.text });
}

// RFC 3986 path characters plus '?' and the query; no whitespace or control characters.
const HTTP_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$/;

export function parseReady(s: Setting, { mode, modeWhere }: ModeContext): ReadySpec {
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

/** Ready= text for a readiness spec. */
export function readyText(r: ReadySpec): string {
  return r.kind === 'http' ? (r.path === '/' ? 'http' : `http:${r.path}`) : r.kind;
}

/** A time span in ms; null is 'infinity'. */
export function parseSpan(s: Setting, allowInfinity: boolean, allowZero: boolean): number | null {
  let ms: number | null;
  try {
    ms = parseTimespan(s.text, s.location === null ? s.where : s.key);
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

/** The messages of a per-socket key (parsePerSocket), each naming what was wrong. */
interface PerSocketMessages {
  tooMany: (n: number) => string;
  /** Null: an empty value is an empty list. */
  empty: string | null;
  invalid: (word: string) => string;
  twice: (name: string) => string;
}

/**
 * A key that takes one value for every socket ('8080'), or NAME=VALUE pairs by FileDescriptorName=
 * ('web=8080 admin=8443'), at most MAX_BACKENDS; `value` parses one VALUE. A null name is every socket.
 */
function parsePerSocket<T>(s: Setting, m: PerSocketMessages, value: (text: string) => T): Array<{ name: string | null; value: T }> {
  const words = s.text.split(/[ \t]+/).filter((w) => w !== '');
  if (words.length > MAX_BACKENDS) throw configError(s.where, m.tooMany(words.length), { value: s.text });
  const single = words[0];
  if (single === undefined && m.empty !== null) throw configError(s.where, m.empty, { value: s.text });
  if (words.length === 1 && single !== undefined && !single.includes('=')) return [{ name: null, value: value(single) }];
  const seen = new Set<string>();
  return words.map((w) => {
    const eq = w.indexOf('=');
    const name = w.slice(0, eq);
    if (eq <= 0 || !FD_NAME.test(name)) throw configError(s.where, m.invalid(w), { value: s.text });
    if (seen.has(name)) throw configError(s.where, m.twice(name), { value: s.text });
    seen.add(name);
    return { name, value: value(w.slice(eq + 1)) };
  });
}

export function parseBackends(s: Setting): Backend[] {
  return parsePerSocket(
    s,
    {
      tooMany: (n) => `too many backends (${n}; at most ${MAX_BACKENDS})`,
      empty: null,
      invalid: (w) =>
        `invalid backend ${q(w)} in ${q(s.text)} (expected one port such as '8080', or NAME=PORT pairs such as 'web=8080 admin=8443', NAME being a socket's FileDescriptorName=)`,
      twice: (name) => `backend ${q(name)} is given twice in ${q(s.text)}`,
    },
    (text) => parsePort(text, s),
  ).map(({ name, value }) => ({ name, port: value }));
}

/** Backend= text for backends. */
export function backendsText(backends: readonly Backend[]): string {
  return backends.map((b) => (b.name === null ? String(b.port) : `${b.name}=${b.port}`)).join(' ');
}

export function parseMaxConnections(s: Setting): number {
  const n = /^[0-9]{1,7}$/.test(s.text) ? Number(s.text) : NaN;
  if (!(n >= 1 && n <= MAX_MAX_CONNECTIONS)) {
    throw configError(s.where, `invalid connection limit ${q(s.text)} (expected an integer from 1 to ${MAX_MAX_CONNECTIONS})`, {
      value: s.text,
    });
  }
  return n;
}

/** Whether and which PROXY protocol header podsock sends to a socket's backend (proxy/proxy-header.ts). */
export type ProxyProtocolVersion = 'off' | 'v1' | 'v2';

/** One ProxyProtocol= setting; a null name applies to every socket not named. */
export interface ProxyProtocolSetting {
  name: string | null;
  version: ProxyProtocolVersion;
}

const PROXY_PROTOCOL_VERSIONS = ['off', 'v1', 'v2'] as const;

function parseVersion(text: string, s: Setting): ProxyProtocolVersion {
  if ((PROXY_PROTOCOL_VERSIONS as readonly string[]).includes(text)) return text as ProxyProtocolVersion;
  throw configError(s.where, `invalid PROXY protocol version ${q(text)} in ${q(s.text)} (allowed: ${listOf(PROXY_PROTOCOL_VERSIONS)})`, { value: s.text });
}

/** ProxyProtocol=: one version for every socket ('v2'), or NAME=VERSION pairs like Backend= ('web=v2 api=off'). */
export function parseProxyProtocol(s: Setting): ProxyProtocolSetting[] {
  const expected = `${listOf(PROXY_PROTOCOL_VERSIONS)}, or NAME=VERSION pairs such as 'web=v2 api=off'`;
  return parsePerSocket(
    s,
    {
      tooMany: (n) => `too many sockets (${n}; at most ${MAX_BACKENDS})`,
      empty: `empty value (expected one of ${expected})`,
      invalid: (w) => `invalid setting ${q(w)} in ${q(s.text)} (expected one of ${expected}, NAME being a socket's FileDescriptorName=)`,
      twice: (name) => `socket ${q(name)} is given twice in ${q(s.text)}`,
    },
    (text) => parseVersion(text, s),
  ).map(({ name, value }) => ({ name, version: value }));
}

/**
 * A ProxyProtocol= name that no backend serves, when Backend= names every socket (no default backend):
 * a typo that would otherwise leave the header off without a word. Throws PODSOCK_ERR_CONFIG.
 */
export function checkProxyProtocolNames(settings: readonly ProxyProtocolSetting[], backends: readonly Backend[], s: Setting): void {
  if (backends.length === 0 || backends.some((b) => b.name === null)) return;
  const names = backends.map((b) => b.name as string);
  for (const p of settings) {
    if (p.name !== null && !names.includes(p.name)) {
      throw configError(s.where, `socket ${q(p.name)} has no backend: Backend= names ${listOf(names)}`, { value: s.text });
    }
  }
}

/** ProxyProtocol= text for settings. */
export function proxyProtocolText(settings: readonly ProxyProtocolSetting[]): string {
  return settings.map((p) => (p.name === null ? p.version : `${p.name}=${p.version}`)).join(' ');
}

/** Upper bound of MaxFlows=: each flow holds one upstream UDP socket (an fd). */
export const MAX_MAX_FLOWS = 65536;

/** MaxFlows=: how many UDP flows (client addresses) proxy mode serves at once, 1 to MAX_MAX_FLOWS. */
export function parseMaxFlows(s: Setting): number {
  const n = /^[0-9]{1,6}$/.test(s.text) ? Number(s.text) : NaN;
  if (!(n >= 1 && n <= MAX_MAX_FLOWS)) {
    throw configError(s.where, `invalid flow limit ${q(s.text)} (expected an integer from 1 to ${MAX_MAX_FLOWS})`, { value: s.text });
  }
  return n;
}
