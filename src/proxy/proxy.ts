/**
 * Proxy mode: accept on the listening sockets systemd passed, hold connections until the container
 * is ready, then pipe each one to its backend.
 *
 * Where this differs from systemd-socket-proxyd (systemd's src/socket-proxy/socket-proxyd.c closes a
 * client as soon as its backend connect fails, and past its limit accepts and closes, in
 * add_connection_socket()):
 * - connections that arrive before the backend is up are held, not closed;
 * - the connection limit is exact and never accept-then-close: at the limit podsock stops accepting
 *   (closes its net.Server, i.e. its dup of the fd) and the kernel keeps queueing on systemd's socket;
 *   when there is room it dups the fd and listens again. Node's server.maxConnections accepts and
 *   then drops, so it is not used;
 * - the listening sockets belong to systemd: podsock never shutdown()s them and never unlinks a unix
 *   path (both act on the socket systemd shares, systemd.socket(5)); closing a dup only drops
 *   podsock's reference.
 *
 * libuv accepts in a loop until EAGAIN but re-checks the server fd after every connection callback
 * ("connection_cb can close the server socket while we're in the loop", libuv src/unix/stream.c
 * uv__server_io), and net.Server.close() closes the handle synchronously, so closing the servers from
 * inside the 'connection' handler stops accepting exactly at the limit. The native acceptor
 * (native/acceptor.ts acceptConnections) does the same.
 *
 * What stays here whatever the data path: admission, the hold queue, stats, events and the
 * ConnectionIdleTimeout sweep. How connections are accepted, connected and piped is the data path's
 * (ProxyOptions.pipe, data-path.ts): 'native' (default, native-path.ts) or 'js' (js-path.ts).
 */
import { EventEmitter } from 'node:events';
import { PodsockError, q } from '../errors.js';
import { inspectFd } from '../native/fds.js';
import type { Accepting, Connection, DataPath, ProxyContext, ProxyListener } from './data-path.js';
import { JsPath } from './js-path.js';
import { NativePath } from './native-path.js';
import { nativePipeAvailable } from './native-pipe.js';
import { backendError, type Target } from './upstream.js';

export type { ProxyListener } from './data-path.js';
export type { Target } from './upstream.js';

/** Maps a listener name to the backend its connections go to. May throw to refuse a listener. */
export type TargetResolver = (listenerName: string) => Target;

export interface ProxyOptions {
  listeners: readonly ProxyListener[];
  /** Most connections alive at once (held + connecting + piped); more wait in the kernel backlog. */
  maxConnections: number;
  /** Most connections held while no targets are set; more wait in the kernel backlog. */
  maxPending: number;
  /** highWaterMark of every socket, i.e. roughly the bytes buffered per direction. Default 64 KiB. */
  bufferBytes?: number;
  /** Deadline of one backend connect attempt. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Backend connect attempts per connection. Default 5. */
  connectAttempts?: number;
  /** Delay before the second connect attempt, doubling after that. Default 50 ms. */
  connectBackoffMs?: number;
  /** Backlog passed to listen() when podsock (re)listens on a dup. Default 4096, systemd's Backlog= default. */
  backlog?: number;
  /**
   * The data path: 'native' accepts, connects and moves the bytes in the addon, 'js' uses net.Server,
   * net.connect and the JS pipe (pipe.ts). Default: 'native' when the addon has the relay, else 'js'
   * (the CLI passes defaultPipe(env), which honours PODSOCK_PROXY_PIPE=js).
   */
  pipe?: PipeKind;
  /**
   * Close a piped connection (a reset to both sides) that moved no byte in either direction for this
   * many milliseconds; the clock starts when it is piped, so time spent held while the container starts
   * does not count. Checked every quarter of it, at most every second. Undefined or null: never.
   */
  connectionIdleTimeoutMs?: number | null;
}

/** Which data path piped connections use; see ProxyOptions.pipe. */
export type PipeKind = 'native' | 'js';

/** The values PODSOCK_PROXY_PIPE takes (unset or empty: 'native'). */
export const PROXY_PIPE_VALUES = ['native', 'poll', 'js'] as const;

/**
 * The default data path for `env`: 'native' when the addon has the relay, else 'js'.
 * PODSOCK_PROXY_PIPE=js forces the JS pipe and =poll the native relay without io_uring (the CLI sets
 * that up), e.g. to rule either out when chasing a bug; any other value is an error.
 */
export function defaultPipe(env: NodeJS.ProcessEnv): PipeKind {
  const v = env.PODSOCK_PROXY_PIPE;
  if (v !== undefined && v !== '' && !(PROXY_PIPE_VALUES as readonly string[]).includes(v)) {
    throw new PodsockError('PODSOCK_ERR_USAGE', `Invalid PODSOCK_PROXY_PIPE ${q(v)}: expected one of ${PROXY_PIPE_VALUES.map((x) => q(x)).join(', ')}`);
  }
  if (v === 'js') return 'js';
  return nativePipeAvailable() ? 'native' : 'js';
}

/** Counters since construction. */
export interface ProxyStats {
  /** Connections accepted. */
  accepted: number;
  /** Connections that reached their backend and were piped. */
  served: number;
  /** Connections closed because their backend could not be reached. */
  failed: number;
  /** Connections that had to wait for targets (including re-held ones after unsetTargets()). */
  held: number;
  /** Highest number of connections alive at once. */
  peakActive: number;
  /** Connections closed for moving no byte for connectionIdleTimeoutMs. */
  timedOut: number;
}

/** Which connection an error is about. */
export interface ConnectionInfo {
  id: number;
  listener: string;
}

export interface ProxyEvents {
  /** The active count went from 0 to 1. */
  active: [];
  /** The active count went to 0. */
  idle: [];
  /** The active count changed. */
  count: [active: number];
  /** One connection failed (its backend was unreachable); it was closed, nothing else is affected. */
  connectionError: [err: PodsockError, info: ConnectionInfo];
  /** One piped connection moved no byte for `idleMs` (at least connectionIdleTimeoutMs): it is being reset. */
  connectionTimeout: [info: ConnectionInfo, idleMs: number];
  /** podsock could not resume accepting (dup or listen failed); it stays not accepting until start(). */
  error: [err: PodsockError];
  /** accept() failed (EMFILE...); podsock keeps accepting. */
  warning: [err: PodsockError];
}

const DEFAULTS = {
  bufferBytes: 64 * 1024,
  connectTimeoutMs: 5000,
  connectAttempts: 5,
  connectBackoffMs: 50,
  backlog: 4096,
} as const;

/**
 * The proxy for one service. start() begins accepting on every listener; connections accepted while
 * no targets are set are held in arrival order (not read beyond their socket's highWaterMark) up to
 * `maxPending`; setTargets() connects them, in order, and every later connection goes straight
 * through; unsetTargets() holds new connections again. At `maxConnections` alive, or `maxPending`
 * held, podsock stops accepting until there is room (the kernel queues the rest). A backend that
 * cannot be reached after the configured attempts closes that one client and emits
 * 'connectionError'. stopAccepting() stops for good until the next start(); close() stops accepting
 * and resolves when every connection has finished (held ones only finish once targets are set or
 * their client leaves); destroy() resets everything at once. close() and destroy() are idempotent.
 * Throws PODSOCK_ERR_BAD_SOCKET from start() for a listener that is not a listening stream socket,
 * PODSOCK_ERR_NATIVE when its fd cannot be duplicated, PODSOCK_ERR_INTERNAL for invalid options.
 */
export class Proxy extends EventEmitter<ProxyEvents> {
  readonly stats: ProxyStats = { accepted: 0, served: 0, failed: 0, held: 0, peakActive: 0, timedOut: 0 };
  readonly #listeners: readonly ProxyListener[];
  readonly #maxConnections: number;
  readonly #maxPending: number;
  readonly #pipe: PipeKind;
  readonly #path: DataPath;
  readonly #connIdleMs: number | null;
  /** Looks for idle piped connections while the proxy runs with connectionIdleTimeoutMs. */
  #idleSweep: NodeJS.Timeout | null = null;

  /** One net.Server or native acceptor per listener while accepting, else empty. */
  #servers: Accepting[] = [];
  #wantAccept = false;
  #closed = false;
  #resolve: TargetResolver | null = null;
  #nextId = 1;
  /** Every live connection, in accept order. */
  readonly #conns = new Set<Connection>();
  /** Held connections, in accept order (Set keeps insertion order). */
  readonly #held = new Set<Connection>();
  #drainWaiters: Array<() => void> = [];

  constructor(opts: ProxyOptions) {
    super();
    this.#listeners = [...opts.listeners];
    this.#maxConnections = positiveInt('maxConnections', opts.maxConnections);
    this.#maxPending = positiveInt('maxPending', opts.maxPending);
    const bufferBytes = positiveInt('bufferBytes', opts.bufferBytes ?? DEFAULTS.bufferBytes);
    const connectTimeoutMs = positiveInt('connectTimeoutMs', opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
    const connectAttempts = positiveInt('connectAttempts', opts.connectAttempts ?? DEFAULTS.connectAttempts);
    const connectBackoffMs = positiveInt('connectBackoffMs', opts.connectBackoffMs ?? DEFAULTS.connectBackoffMs);
    const backlog = positiveInt('backlog', opts.backlog ?? DEFAULTS.backlog);
    if (opts.pipe !== undefined && opts.pipe !== 'native' && opts.pipe !== 'js') {
      throw new PodsockError('PODSOCK_ERR_INTERNAL', `Expected the proxy option 'pipe' to be 'native' or 'js', got ${q(opts.pipe)}`);
    }
    this.#pipe = opts.pipe ?? defaultPipe({});
    const idle = opts.connectionIdleTimeoutMs ?? null;
    this.#connIdleMs = idle === null ? null : positiveInt('connectionIdleTimeoutMs', idle);
    const ctx: ProxyContext = {
      bufferBytes,
      connectTimeoutMs,
      connectAttempts,
      connectBackoffMs,
      backlog,
      trackIdle: this.#connIdleMs !== null,
      serving: () => this.#resolve !== null,
      nextId: () => this.#nextId++,
      admit: (conn) => this.#admit(conn),
      piped: (conn) => {
        conn.state = 'piped';
        this.stats.served++;
      },
      fail: (conn, err) => this.#fail(conn, err),
      finish: (conn) => this.#finish(conn),
      warn: (err) => this.emit('warning', err),
      listenFailed: (err) => this.#listenFailed(err),
    };
    this.#path = this.#pipe === 'native' ? new NativePath(ctx) : new JsPath(ctx);
  }

  /** The data path piped connections use. */
  get pipe(): PipeKind {
    return this.#pipe;
  }

  /** Connections alive: held, connecting or piped. */
  get activeCount(): number {
    return this.#conns.size;
  }

  /** Connections waiting for targets. */
  get heldCount(): number {
    return this.#held.size;
  }

  /**
   * Bytes buffered in user space by all live connections right now (readable plus writable buffers
   * of both sockets; for a natively relayed connection, what its relay holds). Bounded by about
   * 4 x (bufferBytes + 64 KiB) per connection with the JS pipe, 2 x 256 KiB with the native one.
   */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.#conns) n += c.bufferedBytes();
    return n;
  }

  /** Whether podsock currently has servers open on the listeners. */
  get accepting(): boolean {
    return this.#servers.length > 0;
  }

  /**
   * Begin (or, after stopAccepting(), resume) accepting on every listener. Resolves once every
   * server is listening. Rejects, with nothing left open, for a listener podsock cannot serve.
   */
  async start(): Promise<void> {
    if (this.#closed) throw new PodsockError('PODSOCK_ERR_INTERNAL', 'The proxy is closed');
    for (const l of this.#listeners) checkListener(l);
    this.#wantAccept = true;
    this.#startIdleSweep();
    if (!this.#hasRoom() || this.#servers.length > 0) return;
    let waits: Array<Promise<void>>;
    try {
      waits = this.#openServers().flatMap((s) => s.listening() ?? []);
    } catch (err) {
      this.#wantAccept = false;
      throw err;
    }
    if (waits.length === 0) return;
    try {
      await Promise.all(waits);
    } catch (err) {
      this.#wantAccept = false;
      this.#closeServers();
      throw err;
    }
  }

  /** The container is ready: connect held connections in arrival order, then pass new ones straight through. */
  setTargets(resolve: TargetResolver): void {
    if (this.#closed) return;
    this.#resolve = resolve;
    const held = [...this.#held];
    this.#held.clear();
    for (const conn of held) this.#serve(conn);
    this.#reconcile();
  }

  /**
   * The container is gone: new connections are held again. Connections still connecting to the old
   * backend go back to the hold queue, in their arrival order, instead of failing against a backend
   * that is going away; piped connections are left alone (they end when the backend goes).
   */
  unsetTargets(): void {
    this.#resolve = null;
    const requeue = [...this.#conns].filter((c) => c.state === 'connecting' && c.stopConnecting());
    if (requeue.length > 0) {
      const later = [...this.#held];
      this.#held.clear();
      for (const conn of requeue) {
        conn.state = 'held';
        this.#held.add(conn);
        this.stats.held++;
      }
      for (const conn of later) this.#held.add(conn);
    }
    this.#reconcile();
  }

  /** Stop accepting: close podsock's dups. Connections keep queueing in the kernel for systemd. */
  async stopAccepting(): Promise<void> {
    this.#wantAccept = false;
    this.#closeServers();
  }

  /** Stop accepting and resolve when every live connection has finished. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wantAccept = false;
    this.#closeServers();
    if (this.#conns.size > 0) await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    this.#stopIdleSweep();
  }

  /** Stop accepting and reset every connection now. Idempotent; pending close() calls resolve. */
  destroy(err?: Error): void {
    this.#closed = true;
    this.#wantAccept = false;
    this.#resolve = null;
    this.#stopIdleSweep();
    this.#closeServers();
    for (const conn of [...this.#conns]) {
      conn.abort(err ?? new Error('proxy destroyed'));
      this.#finish(conn);
    }
  }

  #startIdleSweep(): void {
    const limit = this.#connIdleMs;
    if (limit === null || this.#idleSweep !== null) return;
    this.#idleSweep = setInterval(() => this.#sweepIdle(limit), Math.min(1000, Math.max(1, Math.floor(limit / 4))));
    this.#idleSweep.unref(); // the connections keep the process alive, not the sweep
  }

  #stopIdleSweep(): void {
    if (this.#idleSweep !== null) clearInterval(this.#idleSweep);
    this.#idleSweep = null;
  }

  /** Reset every piped connection that moved no byte for `limit` ms: it ends (and counts) as any reset does. */
  #sweepIdle(limit: number): void {
    const now = performance.now();
    for (const conn of this.#conns) {
      if (conn.state !== 'piped' || conn.timedOut) continue;
      const idleMs = conn.idleMs(now);
      if (idleMs < limit) continue;
      conn.timedOut = true;
      this.stats.timedOut++;
      this.emit('connectionTimeout', { id: conn.id, listener: conn.listener }, Math.round(idleMs));
      conn.abort(new Error('connection idle'));
    }
  }

  #hasRoom(): boolean {
    return this.#conns.size < this.#maxConnections && (this.#resolve !== null || this.#held.size < this.#maxPending);
  }

  /** Open or close the servers so that podsock accepts exactly when there is room. */
  #reconcile(): void {
    const want = this.#wantAccept && !this.#closed && this.#hasRoom();
    if (!want) {
      if (this.#servers.length > 0) this.#closeServers();
      return;
    }
    if (this.#servers.length > 0) return;
    try {
      this.#openServers();
    } catch (err) {
      this.#listenFailed(err as PodsockError);
    }
  }

  /** Resuming failed: stop trying (a retry loop could spin on EMFILE) and let the owner decide. */
  #listenFailed(err: PodsockError): void {
    this.#wantAccept = false;
    this.#closeServers();
    this.emit('error', err);
  }

  /** Dup and listen on every listener, all or nothing. Throws PODSOCK_ERR_NATIVE when a dup fails. */
  #openServers(): Accepting[] {
    const servers: Accepting[] = [];
    try {
      for (const l of this.#listeners) servers.push(this.#path.accept(l));
    } catch (err) {
      for (const s of servers) s.close();
      throw err;
    }
    this.#servers = servers;
    return servers;
  }

  #closeServers(): void {
    const servers = this.#servers;
    this.#servers = [];
    for (const s of servers) s.close();
  }

  #admit(conn: Connection): void {
    this.stats.accepted++;
    this.#conns.add(conn);
    if (this.#conns.size > this.stats.peakActive) this.stats.peakActive = this.#conns.size;
    this.#countChanged(this.#conns.size - 1);
    if (this.#resolve !== null) {
      this.#serve(conn);
    } else {
      // Not reading: a held socket fills at most its readable highWaterMark, then libuv stops reading.
      this.#held.add(conn);
      this.stats.held++;
    }
    this.#reconcile();
  }

  #serve(conn: Connection): void {
    const resolve = this.#resolve;
    if (resolve === null) return;
    conn.state = 'connecting';
    let target: Target;
    try {
      target = resolve(conn.listener);
    } catch (err) {
      this.#fail(conn, backendError(err, conn.listener));
      return;
    }
    conn.connect(target);
  }

  #fail(conn: Connection, err: PodsockError): void {
    this.stats.failed++;
    conn.abort(err);
    this.#finish(conn);
    this.emit('connectionError', err, { id: conn.id, listener: conn.listener });
  }

  #finish(conn: Connection): void {
    if (conn.state === 'done') return;
    conn.state = 'done';
    this.#held.delete(conn);
    if (!this.#conns.delete(conn)) return;
    this.#countChanged(this.#conns.size + 1);
    if (this.#conns.size === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
    this.#reconcile();
  }

  #countChanged(before: number): void {
    const now = this.#conns.size;
    this.emit('count', now);
    if (before === 0 && now > 0) this.emit('active');
    else if (before > 0 && now === 0) this.emit('idle');
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `Expected the proxy option ${q(name)} to be a positive integer, got ${q(value)}`);
  }
  return value;
}

/**
 * Refuse what net.Server cannot adopt or what is not ours to accept on: a listening stream socket only,
 * as systemd-socket-proxyd requires (sd_is_socket(fd, 0, SOCK_STREAM, 1) in its add_listen_socket()).
 */
function checkListener(l: ProxyListener): void {
  const info = inspectFd(l.fd);
  const family = info.family === 'inet' || info.family === 'inet6' || info.family === 'unix';
  if (!family || info.type !== 'stream' || !info.listening) {
    throw new PodsockError(
      'PODSOCK_ERR_BAD_SOCKET',
      `Socket ${q(l.name)} (fd ${l.fd}) is a ${info.family} ${info.type}${info.listening ? ' listening' : ''} socket; proxy mode needs a listening stream socket (ListenStream= with Accept=no)`,
      { details: { listener: l.name, fd: l.fd, family: info.family, type: info.type, listening: info.listening } },
    );
  }
}
