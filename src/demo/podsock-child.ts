/**
 * `podsock run` as the demo's child process: its stderr read line by line into DemoEvents (narrate.ts),
 * each handed to `onEvent` as it arrives, and kept in a bounded queue the demo's script waits on with
 * `next(kind, timeoutMs)`. The child gets its own process group, so a Ctrl-C at the terminal reaches
 * only the demo, which then stops podsock with exactly one SIGTERM (a second one would make podsock
 * stop at once, without stopping its container).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PodsockError, q } from '../errors.js';
import { eventFromLogLine, MAX_LOG_LINE, type DemoEvent } from './narrate.js';

/** How podsock ended: its exit code, or the signal that killed it. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How to start podsock and where its events go. */
export interface PodsockChildOptions {
  /** The node binary and podsock's main script (dist/bin/podsock.cjs). */
  node: string;
  main: string;
  /** Arguments after the script: `run NAME ...`. */
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Called for every event, in order, as soon as its line is read. */
  onEvent: (ev: DemoEvent) => void;
}

/** Events kept for `next()`; the demo consumes them as they come, so this is never reached in practice. */
const MAX_QUEUED = 1000;
/** Lines of other output (the container's, podman's) kept to explain a failure. */
const TAIL_LINES = 20;

type EventKind = DemoEvent['kind'];

interface Waiter {
  kind: EventKind;
  resolve: (ev: DemoEvent) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** "status N" or "signal SIGX", for messages. */
export function describeExit(e: ChildExit): string {
  return e.code !== null ? `status ${e.code}` : `signal ${e.signal ?? '?'}`;
}

/**
 * One running `podsock run`, started by the constructor. The owner awaits events with next(), ends it
 * with stop() (idempotent) and learns how it ended from `exited`.
 */
export class PodsockChild {
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  private readonly child: ChildProcess;
  private readonly queue: DemoEvent[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly otherLines: string[] = [];
  private lastProblem: string | null = null;
  private exit: ChildExit | null = null;
  private termSent = false;

  constructor(o: PodsockChildOptions) {
    this.child = spawn(o.node, [o.main, ...o.args], { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.exited = new Promise((resolve) => {
      const done = (e: ChildExit): void => {
        if (this.exit !== null) return;
        this.exit = e;
        for (const w of this.waiters) this.settle(w, null, this.diedError(`before podsock reported '${w.kind}'`));
        resolve(e);
      };
      this.child.once('exit', (code, signal) => done({ code, signal }));
      this.child.once('error', (err) => {
        this.otherLines.push(`cannot start ${o.node}: ${err.message}`);
        done({ code: 127, signal: null });
      });
    });
    const onEvent = (ev: DemoEvent): void => {
      if (ev.kind === 'problem' && ev.level !== 'warn') this.lastProblem = ev.text;
      o.onEvent(ev);
      for (const w of this.waiters) {
        if (w.kind === ev.kind) return this.settle(w, ev, null);
      }
      this.queue.push(ev);
      if (this.queue.length > MAX_QUEUED) this.queue.shift();
    };
    this.readLines(this.child.stderr, (line) => {
      const ev = eventFromLogLine(line);
      if (ev !== null) onEvent(ev);
      else if (line.trim() !== '' && line[0] !== '{') this.keep(line);
    });
    this.readLines(this.child.stdout, (line) => {
      if (line.trim() !== '') this.keep(line);
    });
  }

  /** podsock's pid (for messages). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * The next event of `kind`: the oldest queued one (dropping queued events of other kinds before it,
   * which were already shown), or the next to arrive. Rejects with PODSOCK_ERR_DEMO when podsock exits
   * first or after `timeoutMs`.
   */
  next(kind: EventKind, timeoutMs: number, what: string): Promise<DemoEvent> {
    while (this.queue.length > 0) {
      const ev = this.queue.shift() as DemoEvent;
      if (ev.kind === kind) return Promise.resolve(ev);
    }
    if (this.exit !== null) return Promise.reject(this.diedError(`before ${what}`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        kind,
        resolve,
        reject,
        timer: setTimeout(() => this.settle(w, null, new PodsockError('PODSOCK_ERR_DEMO', `Gave up after ${timeoutMs} ms waiting for ${what}${this.context()}`)), timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /**
   * Stop podsock: one SIGTERM (graceful: it stops the container and exits), then SIGKILL to its
   * process group if it has not exited within `timeoutMs`. Idempotent; resolves with how it exited.
   */
  async stop(timeoutMs: number): Promise<ChildExit> {
    if (this.exit !== null) return this.exit;
    if (!this.termSent) {
      this.termSent = true;
      this.child.kill('SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const e = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (e !== null) return e;
    const pid = this.child.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return this.exited;
  }

  /** The last error podsock logged and the last lines of other output, for a failure message. */
  context(): string {
    const parts: string[] = [];
    if (this.lastProblem !== null) parts.push(`podsock said: ${this.lastProblem}`);
    if (this.otherLines.length > 0) parts.push(`last output:\n  ${this.otherLines.join('\n  ')}`);
    return parts.length > 0 ? `; ${parts.join('; ')}` : '';
  }

  private diedError(when: string): PodsockError {
    const how = this.exit === null ? 'unknown status' : describeExit(this.exit);
    return new PodsockError('PODSOCK_ERR_DEMO', `podsock (pid ${q(this.child.pid)}) exited with ${how} ${when}${this.context()}`);
  }

  private settle(w: Waiter, ev: DemoEvent | null, err: Error | null): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    if (ev !== null) w.resolve(ev);
    else w.reject(err ?? new Error('no event'));
  }

  private keep(line: string): void {
    this.otherLines.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
    if (this.otherLines.length > TAIL_LINES) this.otherLines.shift();
  }

  /** Split a stream into lines; a line over MAX_LOG_LINE is dropped up to its newline. */
  private readLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
    if (stream === null) return;
    let partial = '';
    let skipping = false;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      let start = 0;
      for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
        const piece = chunk.slice(start, nl);
        start = nl + 1;
        if (skipping) skipping = false;
        else onLine(partial + piece);
        partial = '';
      }
      if (!skipping) partial += chunk.slice(start);
      if (partial.length > MAX_LOG_LINE) {
        partial = '';
        skipping = true;
      }
    });
  }
}
