/**
 * What `podsock status` shows of a status record: the record checked against the living (is the
 * podsock that wrote it still there?) and put in the documented JSON shape, and the human table.
 * Pure: the caller passes whether the pid is alive and the time.
 *
 * The JSON shape (`podsock status --json`), version 1, is stable: fields are only ever added.
 */
import { formatTimespan } from '../config/timespan.js';
import { usualColdStartMs, type StatusRecord, type StatusState } from './status-record.js';

export type Scope = 'system' | 'user';

/** One service in `podsock status --json`. Times are ISO 8601 strings, durations milliseconds. */
export interface StatusView {
  name: string;
  scope: Scope;
  /** The status file it was read from. */
  file: string;
  mode: 'handover' | 'proxy';
  sockets: string[];
  /** The recorded state, or 'stopped' when the podsock that recorded a live state is gone. */
  state: StatusState;
  /** The container runs (or is starting or stopping) under a podsock that is alive. */
  running: boolean;
  /** podsock's pid while it is alive, else null. */
  pid: number | null;
  /** Since when `state` holds. */
  since: string;
  lastColdStartMs: number | null;
  /** The median of the last recorded cold starts. */
  usualColdStartMs: number | null;
  /** Connections and UDP flows now (0 when not running). */
  active: number;
  idleTimeoutMs: number | null;
  /** When the idle timer fires if nothing connects, or null when it is not armed. */
  idleDeadline: string | null;
  consecutiveFailures: number;
  lastError: string | null;
  lastErrorAt: string | null;
  image: string;
  updatedAt: string;
}

/** The whole `podsock status --json` document. */
export interface StatusDocument {
  version: 1;
  services: StatusView[];
  /** Status files and state directories that could not be read, with why. */
  unreadable: Array<{ path: string; error: string }>;
}

const LIVE: ReadonlySet<StatusState> = new Set(['starting', 'ready', 'stopping', 'waiting']);
const RUNNING: ReadonlySet<StatusState> = new Set(['starting', 'ready', 'stopping']);

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The view of `r`, read from `file` in the `scope` state directory; `alive`: its podsock still runs. Pure. */
export function viewOf(r: StatusRecord, scope: Scope, file: string, alive: boolean): StatusView {
  // A live state whose podsock is gone (killed, or the machine rebooted with a persistent state dir): stopped since its last word.
  const gone = !alive && LIVE.has(r.state);
  return {
    name: r.name,
    scope,
    file,
    mode: r.mode,
    sockets: r.sockets,
    state: gone ? 'stopped' : r.state,
    running: alive && RUNNING.has(r.state),
    pid: alive ? r.pid : null,
    since: iso(gone ? r.updatedAt : r.since),
    lastColdStartMs: r.lastColdStartMs,
    usualColdStartMs: usualColdStartMs(r),
    active: gone ? 0 : r.active,
    idleTimeoutMs: r.idleTimeoutMs,
    idleDeadline: gone || r.idleDeadline === null ? null : iso(r.idleDeadline),
    consecutiveFailures: r.consecutiveFailures,
    lastError: r.lastError,
    lastErrorAt: r.lastErrorAt === null ? null : iso(r.lastErrorAt),
    image: r.image,
    updatedAt: iso(r.updatedAt),
  };
}

/** A span in seconds for the table: "2min 3s", "800ms". */
function span(ms: number): string {
  return formatTimespan(ms >= 10_000 ? Math.round(ms / 1000) * 1000 : Math.max(0, Math.round(ms)));
}

function clip(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length <= max ? one : `${one.slice(0, max - 3)}...`;
}

const HEADER = ['NAME', 'SCOPE', 'MODE', 'SOCKETS', 'STATE', 'SINCE', 'COLD START', 'ACTIVE', 'IDLE STOP', 'FAILURES', 'LAST ERROR', 'IMAGE'];

/** The human table, one line per service, columns padded; `now` for the relative times. Pure. */
export function formatStatusTable(views: readonly StatusView[], now: number): string {
  const rows = views.map((v) => {
    const state = v.running && v.state === 'ready' ? 'running' : v.state;
    const idle = v.idleDeadline === null ? '-' : `in ${span(Math.max(0, Date.parse(v.idleDeadline) - now))}`;
    const failures = v.consecutiveFailures === 0 ? '0' : String(v.consecutiveFailures);
    const error = v.consecutiveFailures === 0 || v.lastError === null ? '-' : clip(v.lastError, 60);
    return [
      v.name,
      v.scope,
      v.mode,
      v.sockets.length === 0 ? '-' : clip(v.sockets.join(', '), 60),
      v.running ? `${state} (pid ${v.pid})` : state,
      `${span(Math.max(0, now - Date.parse(v.since)))} ago`,
      v.lastColdStartMs === null ? '-' : span(v.lastColdStartMs),
      v.running ? String(v.active) : '-',
      idle,
      failures,
      error,
      clip(v.image, 50),
    ];
  });
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] as string).length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ')).join('\n') + '\n';
}
