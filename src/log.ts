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
 */
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type Logger, type Level } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
const LABEL: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name']);

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

/** Create the root logger. `level` is one of LOG_LEVELS. */
export function createLogger(level: Level, env: NodeJS.ProcessEnv): Logger {
  const style = stderrIsJournal(env) ? 'journal' : isatty(2) ? 'pretty' : 'json';
  if (style === 'json') return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  const dest = pino.destination({ fd: 2, sync: true });
  const stream = { write: (s: string): void => void dest.write(formatLine(s, style)) };
  return pino({ level, base: undefined }, stream);
}
