/**
 * The frontend for handover mode. The container owns accept(), so podsock cannot see connections
 * itself; it counts them in the kernel instead: established connections on each listening address,
 * including those still waiting in the accept queue (kernel-connections.ts; unix listeners through
 * sock_diag, native/sock-diag.c, falling back to /proc/net/unix only where that is missing). The count is sampled
 * every `pollMs`: this is the one place podsock polls, because the kernel offers no event for
 * "a connection on a socket someone else accepts from".
 *
 * Datagram sockets have no connections to count; they are ignored here (documented in the README).
 */
import type { Backend, Frontend } from '../frontend.js';
import type { ListenFd } from '../sd/listen-fds.js';
import { nativeErrno } from '../native/addon.js';
import { unixConnections } from '../native/sock-diag.js';
import { readConnectionCount, type UnixCounter, type WatchedSocket } from './kernel-connections.js';

// What nativeErrno says when the kernel has no sock_diag for unix sockets (no CONFIG_UNIX_DIAG).
const NO_SOCK_DIAG: ReadonlySet<string | undefined> = new Set(['EAFNOSUPPORT', 'EPROTONOSUPPORT']);

export interface HandoverFrontendOptions {
  listeners: readonly ListenFd[];
  /** Sampling interval while serving. */
  pollMs: number;
  /** Sampling interval while waiting for the first connection (standalone). */
  wakePollMs?: number;
  /** Reports a failure to read the kernel tables (the count is then treated as busy). */
  onError?: (err: unknown) => void;
  /** Counts unix listeners' connections by fd (default: sock_diag, native/sock-diag.ts unixConnections). */
  countUnix?: UnixCounter;
  /** Reports, once, that sock_diag is missing and unix connections are read from /proc/net/unix instead. */
  onFallback?: (err: unknown) => void;
}

/** Which sockets can be counted: listening stream sockets with an address. */
export function watchedSockets(listeners: readonly ListenFd[]): WatchedSocket[] {
  const out: WatchedSocket[] = [];
  for (const l of listeners) {
    if (l.type !== 'stream' || !l.listening) continue;
    if ((l.family === 'inet' || l.family === 'inet6') && l.host !== undefined && l.port !== undefined) {
      out.push({ kind: 'tcp', host: l.host, port: l.port });
    } else if (l.family === 'unix' && l.path !== undefined && l.path !== '') {
      out.push({ kind: 'unix', path: l.path, fd: l.fd });
    }
  }
  return out;
}

export class HandoverFrontend implements Frontend {
  private readonly watched: WatchedSocket[];
  private readonly o: HandoverFrontendOptions;
  private timer: NodeJS.Timeout | null = null;
  private cb: ((n: number) => void) | null = null;
  private last = 1; // busy until the first sample says otherwise
  private sampling = false;
  private countUnix: UnixCounter | undefined;

  constructor(o: HandoverFrontendOptions) {
    this.o = o;
    this.watched = watchedSockets(o.listeners);
    this.countUnix = o.countUnix ?? unixConnections;
  }

  async start(): Promise<void> {
    // Nothing to set up: the kernel queues connections until the container accepts them.
  }

  private async sample(): Promise<number> {
    if (this.watched.length === 0) return 1; // nothing countable: never idle by count
    try {
      return await readConnectionCount(this.watched, undefined, this.countUnix);
    } catch (err) {
      if (this.countUnix !== undefined && NO_SOCK_DIAG.has(nativeErrno(err))) {
        this.countUnix = undefined;
        this.o.onFallback?.(err);
        return this.sample();
      }
      this.o.onError?.(err);
      return 1;
    }
  }

  waitForConnection(signal: AbortSignal): Promise<boolean> {
    const every = this.o.wakePollMs ?? 50;
    return new Promise((resolve) => {
      let t: NodeJS.Timeout | null = null;
      const finish = (v: boolean): void => {
        if (t !== null) clearTimeout(t);
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = (): void => finish(false);
      signal.addEventListener('abort', onAbort, { once: true });
      const tick = async (): Promise<void> => {
        if (signal.aborted) return;
        const n = await this.sample();
        if (signal.aborted) return;
        if (n > 0 && this.watched.length > 0) finish(true);
        else t = setTimeout(() => void tick(), every);
      };
      void tick();
    });
  }

  ready(_backends: Backend[]): void {
    this.stopTimer();
    this.timer = setInterval(() => {
      if (this.sampling) return;
      this.sampling = true;
      void this.sample().then((n) => {
        this.sampling = false;
        this.last = n;
        this.cb?.(n);
      });
    }, this.o.pollMs);
  }

  notReady(): void {
    this.stopTimer();
  }

  onActivity(cb: ((active: number) => void) | null): void {
    this.cb = cb;
  }

  activeCount(): number {
    return this.last;
  }

  async stopAccepting(): Promise<void> {
    this.stopTimer();
  }

  async drain(_timeoutMs: number): Promise<void> {
    // The container owns the connections; its own stop handles them.
  }

  async close(): Promise<void> {
    this.stopTimer();
    this.cb = null;
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
