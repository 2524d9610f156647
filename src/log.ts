/**
 * podsock's own log lines (the container's output bypasses this: it goes to the journal as it is).
 *
 * Three outputs, picked from where stderr goes:
 * - stderr is the journal (`JOURNAL_STREAM` names the device:inode of fd 2, systemd.exec(5)): one line per
 *   record with its syslog priority prefix (`<3>` error … `<7>` debug, sd-daemon(3)), so journald files it
 *   at the right level and `systemctl status` shows plain text;
 * - stderr is a terminal: readable `HH:MM:SS level message key=value` lines;
 * - otherwise: pino's JSON, one object per line.
 * All three write synchronously, so nothing is lost when podsock exits right after logging.
 *
 * pino itself is loaded late: importing it costs a cold start tens of milliseconds, and `podsock run`
 * has one job before anything else, spawning podman. Until `attach()` the logger keeps its records
 * (with their times) in a bounded buffer and attaches ATTACH_AFTER_MS after it was created (by then a
 * lazy start has usually served its first request), at the first warning or error, or when `attach()`
 * is called (standalone `podsock run`, and always before exiting).
 */
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger as PinoLogger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type Level = (typeof LOG_LEVELS)[number];

const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
const LABEL: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const VALUE: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name']);

/** Records kept before pino is attached; past this, the oldest are dropped and counted. */
export const EARLY_RECORDS_MAX = 1000;
/** The latest moment after creation at which the logger attaches pino by itself. */
export const ATTACH_AFTER_MS = 1000;

type LogFn = (objOrMsg: Record<string, unknown> | string, msg?: string) => void;

/** podsock's logger: pino's call shape (`log.info(obj, msg)` or `log.info(msg)`), children with bindings. */
export interface Logger {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

/** The root logger, which also owns the switch from the early buffer to pino. */
export interface RootLogger extends Logger {
  /** Load pino and write every kept record; later records go straight to pino. Idempotent. */
  attach(): Promise<void>;
}

/** Whether fd 2 is the journal stream systemd announced in JOURNAL_STREAM ("device:inode"). */
export function stderrIsJournal(env: NodeJS.ProcessEnv): boolean {
  const js = env.JOURNAL_STREAM;
  if (js === undefined) return false;
  const m = /^(\d+):(\d+)$/.exec(js);
  if (m === null) return false;
  try {
    const st = fstatSync(2, { bigint: true });
    return st.dev === BigInt(m[1] ?? '') && st.ino === BigInt(m[2] ?? '');
  } catch {
    return false;
  }
}

function extras(rec: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (SKIP.has(k) || v === undefined) continue;
    if (k === 'err' && v !== null && typeof v === 'object') {
      const e = v as { message?: unknown; code?: unknown };
      parts.push(`err=${JSON.stringify(String(e.message ?? ''))}${e.code !== undefined ? ` code=${String(e.code)}` : ''}`);
      continue;
    }
    parts.push(`${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

/** Format one pino JSON record for the journal or a terminal. Pure; exported for tests. */
export function formatLine(json: string, style: 'journal' | 'pretty'): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = typeof rec.level === 'number' ? rec.level : 30;
  const msg = String(rec.msg ?? '').replace(/\n/g, ' ');
  if (style === 'journal') return `<${PRIORITY[level] ?? 6}>${msg}${extras(rec)}\n`;
  const t = new Date(typeof rec.time === 'number' ? rec.time : Date.now());
  const hh = t.toTimeString().slice(0, 8);
  return `${hh} ${(LABEL[level] ?? 'info').padEnd(5)} ${msg}${extras(rec)}\n`;
}

interface Early {
  time: number;
  level: Level;
  bindings: Array<Record<string, unknown>>;
  obj: Record<string, unknown> | string;
  msg: string | undefined;
}

/**
 * Create the root logger. `level` is one of LOG_LEVELS. Records below `level` are discarded at once,
 * before or after attaching. It writes to stderr (`options.fd` for tests).
 */
export function createLogger(level: Level, env: NodeJS.ProcessEnv, options: { fd?: number } = {}): RootLogger {
  const fd = options.fd ?? 2;
  const journal = fd === 2 && stderrIsJournal(env);
  const threshold = VALUE[level];
  let early: Early[] | null = [];
  let droppedEarly = 0;
  let pinoRoot: PinoLogger | null = null;
  // The time a replayed record carries: the moment it was logged, not the moment it was written.
  let replayTime: number | null = null;
  const timer = setTimeout(() => void attach(), ATTACH_AFTER_MS);
  timer.unref();

  const children = new WeakMap<object, PinoLogger>();
  const pinoFor = (bindings: Array<Record<string, unknown>>): PinoLogger => {
    let l = pinoRoot as PinoLogger;
    for (const b of bindings) {
      let c = children.get(b);
      if (c === undefined) {
        c = l.child(b);
        children.set(b, c);
      }
      l = c;
    }
    return l;
  };
  const write = (e: Early): void => {
    const target = pinoFor(e.bindings);
    if (typeof e.obj === 'string') target[e.level](e.obj);
    else target[e.level](e.obj, e.msg);
  };

  /**
   * Load pino and write the kept records. Synchronous (pino and node:tty are CommonJS, required on
   * demand), so that a warning logged right before process.exit() still reaches stderr.
   */
  function attachNow(): void {
    if (pinoRoot !== null) return;
    clearTimeout(timer);
    const load = createRequire(import.meta.url);
    const { pino } = load('pino') as typeof import('pino');
    // node:tty too is loaded here, not at start-up (it brings net and streams along).
    const style = journal ? 'journal' : (load('node:tty') as typeof import('node:tty')).isatty(fd) ? 'pretty' : 'json';
    const timestamp = (): string => `,"time":${replayTime ?? Date.now()}`;
    const dest = pino.destination({ fd, sync: true });
    const root =
      style === 'json'
        ? pino({ level, base: { pid: process.pid }, timestamp }, dest)
        : pino({ level, base: undefined, timestamp }, { write: (s: string): void => void dest.write(formatLine(s, style)) });
    pinoRoot = root;
    const kept = early ?? [];
    early = null;
    if (droppedEarly > 0) root.warn(`Dropped ${droppedEarly} log records written before the logger was ready`);
    for (const e of kept) {
      replayTime = e.time;
      try {
        write(e);
      } finally {
        replayTime = null;
      }
    }
  }

  function attach(): Promise<void> {
    try {
      attachNow();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  const make = (bindings: Array<Record<string, unknown>>): Logger => {
    const fn =
      (lvl: Level): LogFn =>
      (obj, msg) => {
        if (VALUE[lvl] < threshold) return;
        const e: Early = { time: Date.now(), level: lvl, bindings, obj, msg };
        if (early === null) return write(e);
        // A warning or an error is no part of a fast start, and may come right before an exit: write
        // everything now.
        if (VALUE[lvl] >= VALUE.warn) {
          early.push(e);
          return attachNow();
        }
        if (early.length >= EARLY_RECORDS_MAX) {
          early.shift();
          droppedEarly++;
        }
        early.push(e);
      };
    return {
      fatal: fn('fatal'),
      error: fn('error'),
      warn: fn('warn'),
      info: fn('info'),
      debug: fn('debug'),
      trace: fn('trace'),
      child: (b) => make([...bindings, b]),
    };
  };
  return { ...make([]), attach };
}
