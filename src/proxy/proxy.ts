/**
 * Proxy mode: accept on the listening sockets systemd passed, hold connections until the container
 * is ready, then pipe each one to its backend.
 *
 * Where this differs from systemd-socket-proxyd (systemd-socket-proxyd(8); systemd's
 * src/socket-proxy/socket-proxyd.c):
 * - connections that arrive before the backend is up are held, not closed;
 * - the connection limit is exact and never accept-then-close: at the limit podsock stops accepting
 *   (closes its net.Server, i.e. its dup of the fd) and the kernel keeps queueing on systemd's socket;
 *   when there is room it dups the fd and listens again. Node's server.maxConnections accepts and
 *   then drops, so it is not used;
 * - the listening sockets belong to systemd: podsock never shutdown()s them and never unlinks a unix
 *   path; closing a dup only drops podsock's reference.
 *
 * libuv accepts in a loop until EAGAIN but re-checks the server fd after every connection callback
 * ("connection_cb can close the server socket while we're in the loop", libuv src/unix/stream.c
 * uv__server_io), and net.Server.close() closes the handle synchronously, so closing the servers from
 * inside the 'connection' handler stops accepting exactly at the limit. The native acceptor
 * (sd/native.ts acceptConnections) does the same.
 *
 * Two data paths (ProxyOptions.pipe):
 * - 'native' (default): the addon accepts (no net.Socket for a connection that goes straight through),
 *   connects to the backend and relays, one JS call per connection each way (relayConnect). Retries
 *   are JS timers, made only after a failed attempt. A connection accepted while no targets are set
 *   becomes a net.Socket, so that holding it behaves exactly as in the JS path (bounded read-ahead,
 *   a client that leaves is noticed), and is taken back from Node when it is served;
 * - 'js': net.Server, net.connect (upstream.ts) and the JS pipe (pipe.ts), the fallback.
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { createServer, isIP, Socket, type Server } from 'node:net';
import { PodsockError, q } from '../errors.js';
import {
  acceptConnections,
  closeFd,
  dupFd,
  inspectFd,
  RELAY_CONNECT_FAILED,
  RELAY_CONNECTED,
  relayConnect,
  resetFd,
  type ConnectTarget,
  type Relay,
  type RelayConnectOptions,
  type RelayEvent,
} from '../sd/native.js';
import { nativePipeAvailable, takeOverSocket } from './native-pipe.js';
import { pipeSockets, resetOrDestroy } from './pipe.js';
import { connectFailed, connectUpstream, describeTarget, retryDelayMs, type Target } from './upstream.js';

export type { Target } from './upstream.js';

/** A listening stream socket passed by systemd (or bound by podsock), by FileDescriptorName. */
export interface ProxyListener {
  name: string;
  fd: number;
}

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

type ConnState = 'held' | 'connecting' | 'piped' | 'done';

interface Conn {
  readonly id: number;
  readonly listener: string;
  /** The client as a net.Socket: every connection of the JS path, a held one of the native path. */
  client: Socket | null;
  /** Native path: the client's fd while podsock holds it outside a relay (between attempts), else -1. */
  fd: number;
  /** Native path: bytes read from a held client before it was served, and whether it had sent EOF. */
  initial: Buffer | null;
  ended: boolean;
  state: ConnState;
  /** JS path: aborts the current backend connect; replaced for every attempt so a stale one is recognisable. */
  attempt: AbortController | null;
  upstream: Socket | null;
  /** Native path: the relay (connecting or piping); it owns the client fd while it exists. */
  relay: Relay | null;
  /** Native path: backend connect attempts made, the current one's number (0: none), the timer of the next. */
  attempts: number;
  attemptId: number;
  retry: NodeJS.Timeout | null;
  /** JS path: performance.now() when it was piped or last read from either side. */
  activeAt: number;
  /** Reset for being idle: not reported again. */
  timedOut: boolean;
}

/** What accepts on one listener: a net.Server (JS path) or the addon's acceptor (native path). */
interface Accepting {
  close(): void;
}

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
  readonly #bufferBytes: number;
  readonly #connectTimeoutMs: number;
  readonly #connectAttempts: number;
  readonly #connectBackoffMs: number;
  readonly #backlog: number;
  readonly #pipe: PipeKind;
  readonly #connIdleMs: number | null;
  /** Looks for idle piped connections while the proxy runs with connectionIdleTimeoutMs. */
  #idleSweep: NodeJS.Timeout | null = null;

  /** One net.Server or native acceptor per listener while accepting, else empty. */
  #servers: Accepting[] = [];
  readonly #relayOptions: RelayConnectOptions;
  #attemptSeq = 0;
  #wantAccept = false;
  #closed = false;
  #resolve: TargetResolver | null = null;
  #nextId = 1;
  /** Every live connection, in accept order. */
  readonly #conns = new Set<Conn>();
  /** Held connections, in accept order (Set keeps insertion order). */
  readonly #held = new Set<Conn>();
  #drainWaiters: Array<() => void> = [];
  /** Servers whose listen errors start() reports by rejecting. */
  readonly #starting = new WeakSet<Server>();

  constructor(opts: ProxyOptions) {
    super();
    this.#listeners = [...opts.listeners];
    this.#maxConnections = positiveInt('maxConnections', opts.maxConnections);
    this.#maxPending = positiveInt('maxPending', opts.maxPending);
    this.#bufferBytes = positiveInt('bufferBytes', opts.bufferBytes ?? DEFAULTS.bufferBytes);
    this.#connectTimeoutMs = positiveInt('connectTimeoutMs', opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
    this.#connectAttempts = positiveInt('connectAttempts', opts.connectAttempts ?? DEFAULTS.connectAttempts);
    this.#connectBackoffMs = positiveInt('connectBackoffMs', opts.connectBackoffMs ?? DEFAULTS.connectBackoffMs);
    this.#backlog = positiveInt('backlog', opts.backlog ?? DEFAULTS.backlog);
    if (opts.pipe !== undefined && opts.pipe !== 'native' && opts.pipe !== 'js') {
      throw new PodsockError('PODSOCK_ERR_INTERNAL', `Expected the proxy option 'pipe' to be 'native' or 'js', got ${q(opts.pipe)}`);
    }
    this.#pipe = opts.pipe ?? defaultPipe({});
    const idle = opts.connectionIdleTimeoutMs ?? null;
    this.#connIdleMs = idle === null ? null : positiveInt('connectionIdleTimeoutMs', idle);
    this.#relayOptions = { timeoutMs: this.#connectTimeoutMs };
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
    for (const c of this.#conns) {
      if (c.relay) {
        n += c.relay.bufferedBytes;
        continue;
      }
      if (c.initial) n += c.initial.length;
      if (c.client) n += c.client.readableLength + c.client.writableLength;
      if (c.upstream) n += c.upstream.readableLength + c.upstream.writableLength;
    }
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
    if (this.#pipe === 'native') {
      try {
        this.#openServers();
      } catch (err) {
        this.#wantAccept = false;
        throw err;
      }
      return;
    }
    const opened = this.#openServers() as Server[];
    for (const s of opened) this.#starting.add(s);
    try {
      await Promise.all(opened.map((s) => listening(s)));
    } catch (err) {
      this.#wantAccept = false;
      this.#closeServers();
      throw err;
    } finally {
      for (const s of opened) this.#starting.delete(s);
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
    const requeue = [...this.#conns].filter((c) => c.state === 'connecting' && this.#stopConnecting(c));
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
      conn.attempt?.abort(err ?? new Error('proxy destroyed'));
      if (conn.retry) clearTimeout(conn.retry);
      conn.relay?.abort();
      if (conn.upstream) resetOrDestroy(conn.upstream);
      this.#resetClient(conn);
      this.#finish(conn);
    }
  }

  /**
   * Stop the backend connect of a connecting connection so it can be held again. Native path: a relay
   * still connecting gives its client fd back, which becomes a net.Socket like any held client (with
   * what was read from it before put back in front). false when it is too late (already piped).
   */
  #stopConnecting(conn: Conn): boolean {
    if (conn.attempt) {
      conn.attempt.abort(new Error('targets unset'));
      conn.attempt = null;
      return true;
    }
    if (conn.relay && !conn.relay.cancel()) return false;
    conn.relay = null;
    conn.attemptId = 0;
    if (conn.retry) clearTimeout(conn.retry);
    conn.retry = null;
    conn.attempts = 0;
    if (conn.fd >= 0) {
      const fd = conn.fd;
      conn.fd = -1;
      try {
        conn.client = this.#adopt(conn, fd);
      } catch {
        resetFd(fd);
        this.#finish(conn);
        return false;
      }
      if (conn.initial) conn.client.unshift(conn.initial);
      conn.initial = null;
      conn.ended = false; // the kernel still reports the EOF to the new socket
    }
    return true;
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
      const idleMs = conn.relay !== null ? conn.relay.idleMs : now - conn.activeAt;
      if (idleMs < limit) continue;
      conn.timedOut = true;
      this.stats.timedOut++;
      this.emit('connectionTimeout', { id: conn.id, listener: conn.listener }, Math.round(idleMs));
      if (conn.relay !== null) conn.relay.abort();
      else {
        // The pipe's close handlers finish the connection.
        if (conn.client) resetOrDestroy(conn.client);
        if (conn.upstream) resetOrDestroy(conn.upstream);
      }
    }
  }

  /** Reset the client of a connection that is not in a relay (a failed or destroyed one). */
  #resetClient(conn: Conn): void {
    if (conn.client) resetOrDestroy(conn.client);
    if (conn.fd >= 0 && conn.relay === null) {
      const fd = conn.fd;
      conn.fd = -1;
      resetFd(fd);
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
      for (const l of this.#listeners) servers.push(this.#pipe === 'native' ? this.#openAcceptor(l) : this.#openServer(l));
    } catch (err) {
      for (const s of servers) s.close();
      throw err;
    }
    this.#servers = servers;
    return servers;
  }

  /**
   * The native path's acceptor on a dup of the listener. It calls listen() with the backlog as Node
   * would (see #openServer); a failure is PODSOCK_ERR_LISTEN, like a net.Server's 'error' at listen.
   */
  #openAcceptor(l: ProxyListener): Accepting {
    const dup = dupFd(l.fd);
    try {
      return acceptConnections(
        dup,
        this.#backlog,
        (fd) => this.#acceptFd(fd, l.name),
        (err) => {
          // EMFILE and friends: the acceptor pauses briefly and goes on, as net.Server does.
          this.emit('warning', new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on socket ${q(l.name)}: ${err.message}`, { cause: err, details: { listener: l.name, fd: l.fd } }));
        },
      );
    } catch (err) {
      closeFd(dup);
      throw new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on socket ${q(l.name)}: ${(err as Error).message}`, {
        cause: err,
        details: { listener: l.name, fd: l.fd },
      });
    }
  }

  #openServer(l: ProxyListener): Server {
    const dup = dupFd(l.fd);
    const server = createServer(
      { allowHalfOpen: true, noDelay: true, highWaterMark: this.#bufferBytes },
      (client) => this.#accept(client, l.name),
    );
    server.on('error', (err) => {
      if (!this.#servers.includes(server) || this.#starting.has(server)) return;
      const e = new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on socket ${q(l.name)}: ${err.message}`, {
        cause: err,
        details: { listener: l.name, fd: l.fd },
      });
      // After 'listening' this is an accept() error (EMFILE...): net.Server keeps accepting.
      if (server.listening) this.emit('warning', e);
      else this.#listenFailed(e);
    });
    // Pass the backlog explicitly: Node would otherwise call listen() with 511 and shrink the
    // backlog of systemd's socket for every later activation too (the backlog belongs to the socket,
    // listen(2)). It must
    // be the second argument: for a `{ fd }` handle Node 20 ignores `options.backlog` (net.js
    // Server.prototype.listen uses only backlogFromArgs on that path); the unit test checks with ss.
    server.listen({ fd: dup }, this.#backlog);
    return server;
  }

  #closeServers(): void {
    const servers = this.#servers;
    this.#servers = [];
    // close() closes only podsock's dup (libuv uv__stream_close); never shutdown() the shared socket.
    for (const s of servers) s.close();
  }

  /** JS path: net.Server accepted `client`. */
  #accept(client: Socket, listener: string): void {
    const conn = this.#newConn(listener, client, -1);
    this.#watchClient(conn, client);
    this.#admit(conn);
  }

  /**
   * Native path: the acceptor accepted `fd`. With targets set it goes straight to relayConnect() and
   * never becomes a net.Socket; else it is adopted by Node and held.
   */
  #acceptFd(fd: number, listener: string): void {
    const conn = this.#newConn(listener, null, fd);
    if (this.#resolve === null) {
      try {
        conn.client = this.#adopt(conn, fd);
      } catch {
        resetFd(fd); // EMFILE or similar in Node's open: drop this one, as an accept error would
        return;
      }
      conn.fd = -1;
    }
    this.#admit(conn);
  }

  #newConn(listener: string, client: Socket | null, fd: number): Conn {
    return { id: this.#nextId++, listener, client, fd, initial: null, ended: false, state: 'held', attempt: null, upstream: null, relay: null, attempts: 0, attemptId: 0, retry: null, activeAt: 0, timedOut: false };
  }

  /** A native-path client fd as a net.Socket (reading at most bufferBytes ahead), watched like an accepted one. */
  #adopt(conn: Conn, fd: number): Socket {
    // readableHighWaterMark reaches stream.Duplex through net.Socket's options (not in @types/node).
    const options = { fd, allowHalfOpen: true, readable: true, writable: true, readableHighWaterMark: this.#bufferBytes };
    const client = new Socket(options);
    this.#watchClient(conn, client);
    return client;
  }

  /** Until a pipe owns the socket, an error (a client reset while held) only needs to end the connection. */
  #watchClient(conn: Conn, client: Socket): void {
    client.on('error', noop);
    client.once('close', () => {
      if (conn.client !== client) return; // taken over by the native relay
      if (conn.state === 'held' || conn.state === 'connecting') {
        conn.attempt?.abort(new Error('client closed'));
        this.#finish(conn);
      }
    });
  }

  #admit(conn: Conn): void {
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

  #serve(conn: Conn): void {
    const resolve = this.#resolve;
    if (resolve === null) return;
    conn.state = 'connecting';
    let target: Target;
    try {
      target = resolve(conn.listener);
    } catch (err) {
      this.#fail(conn, toBackendError(err, conn.listener));
      return;
    }
    if (this.#pipe === 'native') {
      this.#serveNative(conn, target);
      return;
    }
    const attempt = new AbortController();
    conn.attempt = attempt;
    connectUpstream(target, {
      timeoutMs: this.#connectTimeoutMs,
      attempts: this.#connectAttempts,
      backoffMs: this.#connectBackoffMs,
      highWaterMark: this.#bufferBytes,
      signal: attempt.signal,
    }).then(
      (upstream) => {
        if (conn.attempt !== attempt || conn.state !== 'connecting') {
          // Re-held, closed or destroyed meanwhile: this backend connection is not wanted.
          upstream.destroy();
          return;
        }
        conn.attempt = null;
        conn.state = 'piped';
        conn.upstream = upstream;
        this.stats.served++;
        const client = conn.client as Socket;
        client.off('error', noop);
        pipeSockets(client, upstream, () => this.#finish(conn));
        conn.activeAt = performance.now();
        if (this.#connIdleMs !== null) {
          const touch = (): void => {
            conn.activeAt = performance.now();
          };
          client.on('data', touch);
          upstream.on('data', touch);
        }
      },
      (err: unknown) => {
        if (conn.attempt !== attempt || conn.state !== 'connecting') return;
        this.#fail(conn, toBackendError(err, conn.listener, target));
      },
    );
  }

  /** Native path: take a held client back from Node, then connect (one attempt after the other). */
  #serveNative(conn: Conn, target: Target): void {
    const client = conn.client;
    if (client) {
      conn.client = null; // its 'close' (from the destroy below) is no longer about this connection
      try {
        const side = takeOverSocket(client);
        conn.fd = side.fd;
        conn.initial = side.initial;
        conn.ended = side.ended;
      } catch (err) {
        this.#fail(conn, toBackendError(err, conn.listener, target));
        return;
      }
    }
    this.#connectNative(conn, target);
  }

  /** One native connect attempt. Names (not IP literals) are looked up first, on this slow path only. */
  #connectNative(conn: Conn, target: Target): void {
    conn.attempts++;
    if ('host' in target && isIP(target.host) === 0) {
      // The lookup counts as the attempt: re-held, destroyed or retried meanwhile, its answer is stale.
      const attempt = ++this.#attemptSeq;
      conn.attemptId = attempt;
      lookup(target.host).then(
        (found) => {
          if (conn.attemptId === attempt && conn.state === 'connecting') this.#relayConnect(conn, target, { ...target, host: found.address });
        },
        (err: unknown) => {
          if (conn.attemptId !== attempt || conn.state !== 'connecting') return;
          conn.attemptId = 0;
          this.#connectFailed(conn, target, err);
        },
      );
      return;
    }
    this.#relayConnect(conn, target, target);
  }

  #relayConnect(conn: Conn, target: Target, address: ConnectTarget): void {
    // RELAY_CONNECTED may come before relayConnect() returns, so attempts are told apart by a number.
    const attempt = ++this.#attemptSeq;
    conn.attemptId = attempt;
    const onEvent = (err: NodeJS.ErrnoException | null, event: RelayEvent): void => {
      if (conn.attemptId !== attempt || conn.state === 'done') return; // cancelled or destroyed meanwhile
      if (event === RELAY_CONNECTED) {
        conn.fd = -1; // the relay owns the client now
        conn.initial = null;
        conn.state = 'piped';
        this.stats.served++;
      } else if (event === RELAY_CONNECT_FAILED) {
        conn.relay = null; // the client fd is ours again
        conn.attemptId = 0;
        this.#connectFailed(conn, target, err);
      } else {
        this.#finish(conn);
      }
    };
    let relay: Relay;
    try {
      relay = relayConnect({ fd: conn.fd, initial: conn.initial, ended: conn.ended }, address, onEvent, this.#relayOptions);
    } catch (err) {
      conn.attemptId = 0;
      this.#fail(conn, toBackendError(err, conn.listener, target));
      return;
    }
    if (conn.attemptId === attempt) conn.relay = relay;
  }

  /** A native attempt failed: retry after the backoff, or give up on this one client. */
  #connectFailed(conn: Conn, target: Target, err: unknown): void {
    if (conn.attempts >= this.#connectAttempts) {
      this.#fail(conn, connectFailed(target, conn.attempts, err));
      return;
    }
    conn.retry = setTimeout(() => {
      conn.retry = null;
      if (conn.state === 'connecting') this.#connectNative(conn, target);
    }, retryDelayMs(this.#connectBackoffMs, conn.attempts + 1));
  }

  #fail(conn: Conn, err: PodsockError): void {
    this.stats.failed++;
    conn.attempt = null;
    this.#resetClient(conn);
    this.#finish(conn);
    this.emit('connectionError', err, { id: conn.id, listener: conn.listener });
  }

  #finish(conn: Conn): void {
    if (conn.state === 'done') return;
    conn.state = 'done';
    if (conn.retry) clearTimeout(conn.retry);
    conn.retry = null;
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

function noop(): void {}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `Expected the proxy option ${q(name)} to be a positive integer, got ${q(value)}`);
  }
  return value;
}

/**
 * Refuse what net.Server cannot adopt or what is not ours to accept on: listening stream sockets only,
 * as systemd's socket-proxyd.c requires.
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

function listening(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    if (server.listening) {
      resolve();
      return;
    }
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on a passed socket: ${err.message}`, { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
  });
}

function toBackendError(err: unknown, listener: string, target?: Target): PodsockError {
  if (err instanceof PodsockError) return err;
  const where = target === undefined ? '' : ` ${q(describeTarget(target))}`;
  return new PodsockError(
    'PODSOCK_ERR_BACKEND',
    `No backend${where} for a connection on socket ${q(listener)}: ${(err as Error)?.message ?? String(err)}`,
    { cause: err, details: { listener } },
  );
}
