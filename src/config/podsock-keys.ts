/**
 * The keys of [Podsock], one entry each: the key, its command-line flag, the modes it applies to, its
 * help text, its default, its parser, and how `podsock generate` writes it. Everything else is made
 * from this table: the section parser (podsock-section.ts), the flags of `run`, `check` and
 * `generate` (cli/podsock-flags.ts), their help texts and so the man page (cli/usage.ts,
 * scripts/build-man.ts), and the [Podsock] section of a generated NAME.container
 * (generate/container-file.ts). A new key is a field of PodsockValues and an entry here.
 *
 * Mode comes first: the other keys are read against the mode it gives.
 */
import { formatTimespan } from './timespan.js';
import {
  backendsText,
  checkProxyProtocolNames,
  configError,
  parseBackends,
  parseMaxConnections,
  parseMaxFlows,
  parseMode,
  parseProxyProtocol,
  parseReady,
  proxyProtocolText,
  parseSpan,
  readyText,
  type Backend,
  type Mode,
  type ModeContext,
  type ProxyProtocolSetting,
  type ReadySpec,
  type Setting,
} from './podsock-values.js';

/** The validated, defaulted values of the [Podsock] keys. */
export interface PodsockValues {
  mode: Mode;
  ready: ReadySpec;
  /** null = never exit when idle. */
  idleTimeoutMs: number | null;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Proxy mode: at least one; handover mode: empty. A null name is the single default backend. */
  backends: Backend[];
  maxConnections: number;
  /** Proxy mode: close a connection idle (no bytes either way) this long; null = never (the default). */
  connectionIdleTimeoutMs: number | null;
  /** Proxy mode: the PROXY protocol header per socket (proxyProtocolFor()); empty: off everywhere. */
  proxyProtocol: ProxyProtocolSetting[];
  /** Proxy mode, UDP: a flow (one client address) ends after this long without a datagram either way. */
  flowTimeoutMs: number;
  /** Proxy mode, UDP: flows served at once; at the limit the least recently active one is closed. */
  maxFlows: number;
}

/** One [Podsock] key (see the module comment). */
export interface KeyDescriptor<K extends string = string, F extends keyof PodsockValues = keyof PodsockValues> {
  key: K;
  /** The flag of `run`, `check` and `generate` with the same meaning; a flag wins over the file. */
  flag: string;
  /** What the help calls the flag's value. */
  metavar: string;
  /** The field of PodsockValues the key sets. */
  field: F;
  /** The modes in which the key does something; the help of a proxy-only key starts 'Proxy mode:'. */
  modes: readonly Mode[];
  /** Why setting the key in another mode is an error; null: there it is validated, and unused. */
  refusedOutside: string | null;
  /** The help text's lines, defaults in its words (a unit test checks them against absent()). */
  help: readonly string[];
  /** The value when the key is not set; throws when the mode needs the key. */
  absent(ctx: ModeContext): PodsockValues[F];
  /** The value of a setting; throws PodsockError naming where it was set. */
  parse(s: Setting, ctx: ModeContext): PodsockValues[F];
  /** A generated NAME.container's line for the key, with the comment above it, or null to leave the key out. */
  file(v: PodsockValues): { comment: string; value: string } | null;
  /** Checks a setting against the other keys' values once all are parsed; throws PodsockError naming where it was set. */
  check?(value: PodsockValues[F], all: PodsockValues, s: Setting): void;
}

function define<K extends string, F extends keyof PodsockValues>(d: KeyDescriptor<K, F>): KeyDescriptor<K, F> {
  return d;
}

const BOTH: readonly Mode[] = ['handover', 'proxy'];
const PROXY: readonly Mode[] = ['proxy'];

export const DEFAULT_MAX_CONNECTIONS = 4096;
export const DEFAULT_FLOW_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_FLOWS = 1024;

/** The table, in the order of the help texts and of a generated file. */
export const PODSOCK_KEY_TABLE = [
  define({
    key: 'Mode',
    flag: '--mode',
    metavar: 'MODE',
    field: 'mode',
    modes: BOTH,
    refusedOutside: null,
    help: ['handover (default) or proxy'],
    absent: () => 'handover',
    parse: (s) => parseMode(s),
    file: (v) => ({
      comment:
        v.mode === 'handover'
          ? 'handover: the container gets the listening sockets itself (LISTEN_FDS); it needs no network.'
          : 'proxy: podsock accepts the connections and forwards them to Backend= in the container.',
      value: v.mode,
    }),
  }),
  define({
    key: 'Ready',
    flag: '--ready',
    metavar: 'HOW',
    field: 'ready',
    modes: BOTH,
    refusedOutside: null,
    // tcp, http and healthy probe or watch the backend through podsock: parseReady() refuses them in handover mode.
    help: ['started, notify, tcp, http, http:/PATH, healthy'],
    absent: (ctx) => (ctx.mode === 'proxy' ? { kind: 'tcp' } : { kind: 'started' }),
    parse: (s, ctx) => parseReady(s, ctx),
    file: (v) => ({
      comment:
        v.ready.kind === 'notify'
          ? 'Ready once the container sends READY=1 to $NOTIFY_SOCKET; until then systemd holds the clients.'
          : v.ready.kind === 'started'
            ? 'Ready as soon as the container runs (use notify for an app that sends READY=1).'
            : 'How podsock decides that the container is ready to take the held connections.',
      value: readyText(v.ready),
    }),
  }),
  define({
    key: 'IdleTimeout',
    flag: '--idle-timeout',
    metavar: 'SPAN',
    field: 'idleTimeoutMs',
    modes: BOTH,
    refusedOutside: null,
    help: ['Stop after this long without connections; default 5min,', "'infinity' never"],
    absent: () => 5 * 60_000,
    // 0 = exit as soon as idle.
    parse: (s) => parseSpan(s, true, true),
    file: (v) => ({
      comment: "Stop the container (and podsock) after this long without connections; 'infinity' never does.",
      value: formatTimespan(v.idleTimeoutMs),
    }),
  }),
  define({
    key: 'StartTimeout',
    flag: '--start-timeout',
    metavar: 'SPAN',
    field: 'startTimeoutMs',
    modes: BOTH,
    refusedOutside: null,
    help: ['Fail if not ready within this; default 90s'],
    absent: () => 90_000,
    parse: (s) => parseSpan(s, false, false) as number,
    file: (v) => ({ comment: 'The container must be ready within this, or the start fails.', value: formatTimespan(v.startTimeoutMs) }),
  }),
  define({
    key: 'StopTimeout',
    flag: '--stop-timeout',
    metavar: 'SPAN',
    field: 'stopTimeoutMs',
    modes: BOTH,
    refusedOutside: null,
    help: ['Time the container gets to stop; default 10s'],
    absent: () => 10_000,
    parse: (s) => parseSpan(s, false, false) as number,
    file: (v) => ({ comment: '`podman stop` gives the container this long before it is killed.', value: formatTimespan(v.stopTimeoutMs) }),
  }),
  define({
    key: 'Backend',
    flag: '--backend',
    metavar: 'PORTS',
    field: 'backends',
    modes: PROXY,
    refusedOutside: 'a backend is only used in proxy mode',
    help: ['container port, or NAME=PORT per socket'],
    absent: (ctx) => {
      if (ctx.mode !== 'proxy') return [];
      throw configError(
        ctx.modeSetAt ?? 'Mode',
        `proxy mode needs the container port to forward to: set Backend= in [Podsock] (e.g. 'Backend=8080') or --backend`,
        { value: 'proxy' },
      );
    },
    parse: (s) => parseBackends(s),
    file: (v) => ({
      comment: "The container port to forward to (NAME=PORT per socket, NAME being the socket's FileDescriptorName=).",
      value: backendsText(v.backends),
    }),
  }),
  define({
    key: 'MaxConnections',
    flag: '--max-connections',
    metavar: 'N',
    field: 'maxConnections',
    modes: PROXY,
    refusedOutside: null,
    help: [`stop accepting at N; default ${DEFAULT_MAX_CONNECTIONS}`],
    absent: () => DEFAULT_MAX_CONNECTIONS,
    parse: (s) => parseMaxConnections(s),
    file: (v) =>
      v.maxConnections === DEFAULT_MAX_CONNECTIONS ? null : { comment: 'Stop accepting while this many connections are open.', value: String(v.maxConnections) },
  }),
  define({
    key: 'ConnectionIdleTimeout',
    flag: '--connection-idle-timeout',
    metavar: 'SPAN',
    field: 'connectionIdleTimeoutMs',
    modes: PROXY,
    refusedOutside: 'a connection idle timeout only applies in proxy mode (in handover mode the container owns the connections)',
    help: ['close a connection idle this long;', 'default off'],
    absent: () => null,
    // 0 and 'infinity' both mean off: no connection is ever closed for being idle.
    parse: (s) => parseSpan(s, true, true) || null,
    file: (v) =>
      v.connectionIdleTimeoutMs === null
        ? null
        : { comment: 'Close a connection that moved no byte in either direction for this long.', value: formatTimespan(v.connectionIdleTimeoutMs) },
  }),
  define({
    key: 'ProxyProtocol',
    flag: '--proxy-protocol',
    metavar: 'VERSION',
    field: 'proxyProtocol',
    modes: PROXY,
    refusedOutside:
      'the PROXY protocol header goes from podsock to the backend, which only proxy mode has (in handover mode the container accepts the clients itself and sees their addresses)',
    help: ['send the client address first:', 'v1, v2, off (default off), or NAME=VERSION per socket'],
    absent: () => [],
    parse: (s) => parseProxyProtocol(s),
    check: (value, all, s) => checkProxyProtocolNames(value, all.backends, s),
    file: (v) =>
      v.proxyProtocol.every((p) => p.version === 'off')
        ? null
        : {
            comment: "Send the client's address to the backend first in a PROXY protocol header (v1 text, v2 binary; NAME=VERSION per socket).",
            value: proxyProtocolText(v.proxyProtocol),
          },
  }),
  define({
    key: 'FlowTimeout',
    flag: '--flow-timeout',
    metavar: 'SPAN',
    field: 'flowTimeoutMs',
    modes: PROXY,
    refusedOutside: 'flows are how proxy mode serves datagram sockets (in handover mode the container reads them itself)',
    help: ['UDP: end a flow idle this long;', 'default 30s'],
    absent: () => DEFAULT_FLOW_TIMEOUT_MS,
    parse: (s) => parseSpan(s, false, false) as number,
    file: (v) =>
      v.flowTimeoutMs === DEFAULT_FLOW_TIMEOUT_MS
        ? null
        : { comment: 'A UDP flow (one client address) ends after this long without a datagram in either direction.', value: formatTimespan(v.flowTimeoutMs) },
  }),
  define({
    key: 'MaxFlows',
    flag: '--max-flows',
    metavar: 'N',
    field: 'maxFlows',
    modes: PROXY,
    refusedOutside: null,
    help: [`UDP: flows at once, the least recently`, `active one closes first; default ${DEFAULT_MAX_FLOWS}`],
    absent: () => DEFAULT_MAX_FLOWS,
    parse: (s) => parseMaxFlows(s),
    file: (v) => (v.maxFlows === DEFAULT_MAX_FLOWS ? null : { comment: 'Serve at most this many UDP flows (client addresses) at once.', value: String(v.maxFlows) }),
  }),
] as const;

export type PodsockKey = (typeof PODSOCK_KEY_TABLE)[number]['key'];

/** The table for code that handles every key alike. */
export const PODSOCK_KEY_DESCRIPTORS: readonly KeyDescriptor<PodsockKey>[] = PODSOCK_KEY_TABLE;

/** The keys of [Podsock], which are also the names of LoadOptions.flags. */
export const PODSOCK_KEYS: readonly PodsockKey[] = PODSOCK_KEY_TABLE.map((d) => d.key);

/** The command-line flag for each key, used in messages. */
export const FLAG_NAMES: Readonly<Record<PodsockKey, string>> = Object.fromEntries(PODSOCK_KEY_TABLE.map((d) => [d.key, d.flag])) as Record<PodsockKey, string>;

// Every field of PodsockValues is some key's: a field without one fails to compile here.
type FieldWithoutKey = Exclude<keyof PodsockValues, (typeof PODSOCK_KEY_TABLE)[number]['field']>;
const EVERY_FIELD_HAS_A_KEY: [FieldWithoutKey] extends [never] ? true : never = true;
void EVERY_FIELD_HAS_A_KEY;
