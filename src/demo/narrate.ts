/**
 * The demo's reading of `podsock run`'s log: one pino JSON record per stderr line (stderr is a pipe,
 * so log.ts picks JSON) turned into the few events the demo shows, and each event into a sentence.
 * Pure: no I/O, no clock; the demo's driver feeds it lines and prints what it returns.
 *
 * The records are recognised by their message text and fields as src/supervisor.ts and src/activation/
 * write them; the demo's end-to-end test runs the real supervisor, so a change there that breaks this
 * fails a test.
 */

/** Something `podsock run` reported that the demo tells the user about. */
export type DemoEvent =
  /** podsock waits for a connection: at start, and again after each idle stop. */
  | { kind: 'listening' }
  /** A connection arrived and podsock runs `podman run` (debug level). */
  | { kind: 'starting' }
  /** The container passed its readiness check, `ms` after the start began. */
  | { kind: 'ready'; ms: number }
  /** The idle timeout passed with no connection; podsock stops the container. */
  | { kind: 'idle' }
  /** podsock got a stop request (SIGTERM/SIGINT). */
  | { kind: 'stopping' }
  /** A warning or an error podsock logged, with its message. */
  | { kind: 'problem'; level: 'warn' | 'error' | 'fatal'; text: string };

/** Longest log line the demo parses; longer lines (never written by podsock) are ignored. */
export const MAX_LOG_LINE = 64 * 1024;

const READY_MSG = /^Container '.*' ready$/s;
const PROBLEM_LEVELS: Record<number, 'warn' | 'error' | 'fatal'> = { 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * The event in one line of podsock's stderr, or null for anything else: other records, the
 * container's own output (podman's passthrough log driver shares the stream), blank or over-long lines.
 */
export function eventFromLogLine(line: string): DemoEvent | null {
  if (line.length === 0 || line.length > MAX_LOG_LINE || line[0] !== '{') return null;
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return null;
  }
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return null;
  const r = rec as Record<string, unknown>;
  const msg = typeof r.msg === 'string' ? r.msg : null;
  const level = typeof r.level === 'number' ? r.level : null;
  if (msg === null || level === null) return null;
  const problem = PROBLEM_LEVELS[level];
  if (problem !== undefined) return { kind: 'problem', level: problem, text: msg };
  if (msg === 'Waiting for the first connection') return { kind: 'listening' };
  if (msg === 'Starting podman') return { kind: 'starting' };
  if (READY_MSG.test(msg) && typeof r.ms === 'number' && Number.isFinite(r.ms)) return { kind: 'ready', ms: r.ms };
  if (msg.startsWith('Idle for ')) return { kind: 'idle' };
  if (msg === 'Stopping') return { kind: 'stopping' };
  return null;
}

/** What the sentences mention: the address clients use and the idle timeout as the user wrote it. */
export interface NarratorOptions {
  url: string;
  idleText: string;
}

/**
 * Turns events into the demo's lines. It counts listens and starts, so the first start reads
 * "on the first connection" and later ones "again", and the second "listening" reads as the stop.
 */
export class Narrator {
  private listens = 0;
  private starts = 0;
  private readonly o: NarratorOptions;

  constructor(o: NarratorOptions) {
    this.o = o;
  }

  /** The line for `ev`, or null when the event needs none (the driver says it in its own words). */
  line(ev: DemoEvent): string | null {
    switch (ev.kind) {
      case 'listening':
        this.listens += 1;
        return this.listens === 1
          ? `podsock is listening on ${this.o.url} (nothing running yet)`
          : `container stopped; podsock keeps listening on ${this.o.url}`;
      case 'starting':
        return '  connection accepted: podsock starts the container (podman run)';
      case 'ready':
        this.starts += 1;
        return this.starts === 1
          ? `  container started on the first connection (ready in ${Math.round(ev.ms)} ms)`
          : `  container started again (ready in ${Math.round(ev.ms)} ms)`;
      case 'idle':
        return `idle for ${this.o.idleText} → stopping the container`;
      case 'stopping':
        return null;
      case 'problem':
        return `  podsock ${ev.level === 'warn' ? 'warning' : ev.level}: ${ev.text}`;
    }
  }
}

/** The line for one reply: time to its first byte and the first line of its body, quoted. */
export function firstByteLine(prefix: string, firstByteMs: number, body: string): string {
  const first = body.split('\n', 1)[0] ?? '';
  const shown = first.length > 80 ? `${first.slice(0, 77)}...` : first;
  return `${prefix}first byte after ${Math.round(firstByteMs)} ms: ${JSON.stringify(shown)}`;
}
