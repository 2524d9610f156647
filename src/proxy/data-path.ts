/**
 * Where `Proxy` and its two data paths meet. The proxy keeps what does not depend on how the bytes move
 * (admission against maxConnections, the hold queue, stats, events, the ConnectionIdleTimeout sweep); a
 * data path accepts on the listeners and owns each connection's sockets or fds:
 * - native-path.ts: the addon accepts, connects to the backend and relays (no JS per chunk);
 * - js-path.ts: net.Server, net.connect (upstream.ts) and the JS pipe (pipe.ts).
 * The proxy hands a path one ProxyContext; the path hands the proxy one Connection per accepted client.
 */
import type { ProxyProtocolVersion } from '../config/podsock-values.js';
import type { PodsockError } from '../errors.js';
import type { Target } from './upstream.js';

/** A listening stream socket passed by systemd (or bound by podsock), by FileDescriptorName. */
export interface ProxyListener {
  name: string;
  fd: number;
  /** The PROXY protocol header sent before a client's bytes on each of its backend connections (client-header.ts); default 'off'. */
  proxyProtocol?: ProxyProtocolVersion;
}

/**
 * Where a connection is: 'held' (waiting for targets), 'connecting' (to its backend), 'piped' (bytes
 * flow), 'done'. The proxy moves it between 'held' and 'connecting'; the data path reports 'piped'
 * (ProxyContext.piped) and the end (ProxyContext.finish).
 */
export type ConnState = 'held' | 'connecting' | 'piped' | 'done';

/**
 * One accepted client, as its data path keeps it (each path extends this with its own sockets or fds).
 * The proxy sets `state` to 'held' and 'connecting', and `timedOut` when it resets the connection for
 * being idle.
 */
export abstract class Connection {
  readonly id: number;
  readonly listener: string;
  state: ConnState = 'held';
  /** Reset for being idle: not reported again. */
  timedOut = false;

  constructor(id: number, listener: string) {
    this.id = id;
    this.listener = listener;
  }

  /**
   * Connect to `target` and pipe (state is 'connecting'). Ends by ProxyContext.piped() and later
   * ProxyContext.finish(), or by ProxyContext.fail() when the backend cannot be reached.
   */
  abstract connect(target: Target): void;
  /**
   * Stop connecting so that the connection can be held again, with everything read from the client kept
   * in front. false when it is too late (it already connected, or it finished meanwhile).
   */
  abstract stopConnecting(): boolean;
  /**
   * Reset whatever the connection still has open, in any state (a reset, not an EOF, for both peers).
   * A piped one then finishes through its pipe; the caller finishes the others. Idempotent.
   */
  abstract abort(reason: Error): void;
  /** Milliseconds since a piped connection last moved a byte in either direction (`now`: performance.now()). */
  abstract idleMs(now: number): number;
  /** Bytes this connection buffers in user space (or in the relay's pipes) right now. */
  abstract bufferedBytes(): number;
}

/** What accepts on one listener (on a dup of its fd): a net.Server or the addon's acceptor. */
export interface Accepting {
  /** Stop accepting: close podsock's dup only, never shutdown() the socket systemd shares. Idempotent. */
  close(): void;
  /**
   * Resolves once it listens, rejects with PODSOCK_ERR_LISTEN when listen() fails; until then a listen
   * error goes only there. null when it was listening on return.
   */
  listening(): Promise<void> | null;
}

/** The proxy, as a data path sees it. */
export interface ProxyContext {
  /** highWaterMark of every socket, i.e. roughly the bytes buffered per direction. */
  readonly bufferBytes: number;
  /** Deadline of one backend connect attempt. */
  readonly connectTimeoutMs: number;
  /** Backend connect attempts per connection. */
  readonly connectAttempts: number;
  /** Delay before the second connect attempt, doubling after that. */
  readonly connectBackoffMs: number;
  /** Backlog passed to listen() when podsock (re)listens on a dup. */
  readonly backlog: number;
  /** Whether a JS pipe notes the time of each read (connectionIdleTimeoutMs is set). */
  readonly trackIdle: boolean;
  /** Whether targets are set, i.e. a new connection is connected at once rather than held. */
  serving(): boolean;
  /** The id of the next connection. */
  nextId(): number;
  /** A new connection was accepted: count it, then hold or connect it. */
  admit(conn: Connection): void;
  /** The connection reached its backend: it is piped. */
  piped(conn: Connection): void;
  /** The connection's backend could not be reached: reset it, finish it and report `err`. */
  fail(conn: Connection, err: PodsockError): void;
  /** The connection ended (its client left, or its pipe finished). Idempotent. */
  finish(conn: Connection): void;
  /** accept() failed (EMFILE...); accepting goes on. */
  warn(err: PodsockError): void;
  /** Listening again after a pause failed: the proxy stops accepting and reports it. */
  listenFailed(err: PodsockError): void;
}

/** One way of moving a connection's bytes; see native-path.ts and js-path.ts. */
export interface DataPath {
  /**
   * Accept on a dup of `l.fd` (listen() with ProxyContext.backlog); each connection goes to
   * ProxyContext.admit(). Throws PODSOCK_ERR_NATIVE when the fd cannot be duplicated, PODSOCK_ERR_LISTEN
   * when the acceptor cannot start.
   */
  accept(l: ProxyListener): Accepting;
}
