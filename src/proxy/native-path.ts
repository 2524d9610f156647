/**
 * The native data path (ProxyOptions.pipe 'native', the default): the addon accepts (no net.Socket for a
 * connection that goes straight through), connects to the backend and relays, one JS call per
 * connection each way (relayConnect in native/relay.ts). Retries are JS timers, made only after a failed
 * attempt. A connection accepted while no targets are set becomes a net.Socket, so that holding it
 * behaves exactly as in the JS path (bounded read-ahead, a client that leaves is noticed), and is taken
 * back from Node (takeOverSocket, native-pipe.ts) when it is served.
 */
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import { PodsockError, q } from '../errors.js';
import { acceptConnections } from '../native/acceptor.js';
import { closeFd, dupFd, resetFd } from '../native/fds.js';
import { RELAY_CONNECT_FAILED, RELAY_CONNECTED, relayConnect, type ConnectTarget, type Relay, type RelayConnectOptions, type RelayEvent } from '../native/relay.js';
import { Connection, type Accepting, type DataPath, type ProxyContext, type ProxyListener } from './data-path.js';
import { clientHeader } from './client-header.js';
import { takeOverSocket } from './native-pipe.js';
import { resetOrDestroy } from './pipe.js';
import { backendError, connectFailed, retryDelayMs, type Target } from './upstream.js';

export class NativePath implements DataPath {
  readonly ctx: ProxyContext;
  readonly relayOptions: RelayConnectOptions;

  constructor(ctx: ProxyContext) {
    this.ctx = ctx;
    this.relayOptions = { timeoutMs: ctx.connectTimeoutMs };
  }

  /**
   * The addon's acceptor on a dup of the listener. It calls listen() with the backlog as Node would (see
   * js-path.ts); a failure is PODSOCK_ERR_LISTEN, like a net.Server's 'error' at listen.
   */
  accept(l: ProxyListener): Accepting {
    const ctx = this.ctx;
    const dup = dupFd(l.fd);
    try {
      const acceptor = acceptConnections(
        dup,
        ctx.backlog,
        (fd) => this.#accepted(fd, l),
        (err) => {
          // EMFILE and friends: the acceptor pauses briefly and goes on, as net.Server does.
          ctx.warn(new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on socket ${q(l.name)}: ${err.message}`, { cause: err, details: { listener: l.name, fd: l.fd } }));
        },
      );
      return { close: () => acceptor.close(), listening: () => null };
    } catch (err) {
      closeFd(dup);
      throw new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on socket ${q(l.name)}: ${(err as Error).message}`, {
        cause: err,
        details: { listener: l.name, fd: l.fd },
      });
    }
  }

  /** With targets set `fd` goes straight to relayConnect() and never becomes a net.Socket; else it is adopted by Node and held. */
  #accepted(fd: number, l: ProxyListener): void {
    let header: Buffer | null;
    try {
      header = clientHeader(l.proxyProtocol ?? 'off', fd);
    } catch {
      resetFd(fd); // the client is gone before its addresses could be read: as if it never came
      return;
    }
    const conn = new NativeConnection(this, l.name, fd, header);
    if (!this.ctx.serving()) {
      try {
        conn.hold();
      } catch {
        resetFd(fd); // EMFILE or similar in Node's open: drop this one, as an accept error would
        return;
      }
    }
    this.ctx.admit(conn);
  }
}

/**
 * A client accepted by the addon. Its fd is podsock's while held outside a relay (between attempts), a
 * net.Socket while held for targets, and the relay's from relayConnect() on (given back when a connect
 * fails or is cancelled).
 */
class NativeConnection extends Connection {
  readonly #path: NativePath;
  /** The client as a net.Socket while it is held for targets, else null. */
  #client: Socket | null = null;
  /** The client's fd while podsock holds it outside a relay and outside Node, else -1. */
  #fd: number;
  /** Bytes read from a held client before it was served, and whether it had sent EOF. */
  #initial: Buffer | null = null;
  #ended = false;
  /** The relay (connecting or piping); it owns the client fd while it exists. */
  #relay: Relay | null = null;
  /** Backend connect attempts made, the current one's number (0: none; see #nextAttempt), the timer of the next. */
  #attempts = 0;
  #attemptId = 0;
  #attemptSeq = 0;
  #retry: NodeJS.Timeout | null = null;
  /** The PROXY protocol header, sent first on every backend connection (never part of #initial), or null. */
  readonly #header: Buffer | null;

  constructor(path: NativePath, listener: string, fd: number, header: Buffer | null) {
    super(path.ctx.nextId(), listener);
    this.#path = path;
    this.#fd = fd;
    this.#header = header;
  }

  /** Give the fd to Node as a net.Socket (reading at most bufferBytes ahead) to be held. Throws when Node cannot open it. */
  hold(): void {
    this.#client = this.#adopt(this.#fd);
    this.#fd = -1;
  }

  /** Take a held client back from Node, then connect (one attempt after the other). */
  connect(target: Target): void {
    const client = this.#client;
    if (client) {
      this.#client = null; // its 'close' (from the destroy below) is no longer about this connection
      try {
        const side = takeOverSocket(client);
        this.#fd = side.fd;
        this.#initial = side.initial;
        this.#ended = side.ended;
      } catch (err) {
        this.#path.ctx.fail(this, backendError(err, this.listener, target));
        return;
      }
    }
    this.#connectOnce(target);
  }

  /**
   * A relay still connecting gives its client fd back, which becomes a net.Socket like any held client
   * (with what was read from it before put back in front).
   */
  stopConnecting(): boolean {
    if (this.#relay && !this.#relay.cancel()) return false;
    this.#relay = null;
    this.#attemptId = 0;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#attempts = 0;
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      let client: Socket;
      try {
        client = this.#adopt(fd);
      } catch {
        resetFd(fd);
        this.#path.ctx.finish(this);
        return false;
      }
      this.#client = client;
      if (this.#initial) client.unshift(this.#initial);
      this.#initial = null;
      this.#ended = false; // the kernel still reports the EOF to the new socket
    }
    return true;
  }

  abort(): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    // A piped connection: the relay's RELAY_DONE finishes it.
    this.#relay?.abort();
    if (this.#client) resetOrDestroy(this.#client);
    if (this.#fd >= 0 && this.#relay === null) {
      const fd = this.#fd;
      this.#fd = -1;
      resetFd(fd);
    }
  }

  idleMs(): number {
    return this.#relay?.idleMs ?? 0;
  }

  bufferedBytes(): number {
    if (this.#relay) return this.#relay.bufferedBytes;
    const c = this.#client;
    return (this.#initial === null ? 0 : this.#initial.length) + (c === null ? 0 : c.readableLength + c.writableLength);
  }

  /** `fd` as a net.Socket; its close while held ends the connection. */
  #adopt(fd: number): Socket {
    // readableHighWaterMark reaches stream.Duplex through net.Socket's options (not in @types/node).
    const options = { fd, allowHalfOpen: true, readable: true, writable: true, readableHighWaterMark: this.#path.ctx.bufferBytes };
    const client = new Socket(options);
    // Until it is served, an error (a client reset while held) only needs to end the connection.
    client.on('error', noop);
    client.once('close', () => {
      if (this.#client !== client) return; // taken over by the relay
      if (this.state === 'held' || this.state === 'connecting') this.#path.ctx.finish(this);
    });
    return client;
  }

  /** One connect attempt. Names (not IP literals) are looked up first, on this slow path only. */
  #connectOnce(target: Target): void {
    this.#attempts++;
    if ('host' in target && isIP(target.host) === 0) {
      // The lookup counts as the attempt: re-held, destroyed or retried meanwhile, its answer is stale.
      const attempt = this.#nextAttempt();
      lookup(target.host).then(
        (found) => {
          if (this.#attemptId === attempt && this.state === 'connecting') this.#relayConnect(target, { ...target, host: found.address });
        },
        (err: unknown) => {
          if (this.#attemptId !== attempt || this.state !== 'connecting') return;
          this.#attemptId = 0;
          this.#connectFailed(target, err);
        },
      );
      return;
    }
    this.#relayConnect(target, target);
  }

  /** A fresh attempt number, made the current one: an answer for an older one is recognisable. */
  #nextAttempt(): number {
    this.#attemptId = ++this.#attemptSeq;
    return this.#attemptId;
  }

  #relayConnect(target: Target, address: ConnectTarget): void {
    const ctx = this.#path.ctx;
    // RELAY_CONNECTED may come before relayConnect() returns, so attempts are told apart by a number.
    const attempt = this.#nextAttempt();
    const onEvent = (err: NodeJS.ErrnoException | null, event: RelayEvent): void => {
      if (this.#attemptId !== attempt || this.state === 'done') return; // cancelled or destroyed meanwhile
      if (event === RELAY_CONNECTED) {
        this.#fd = -1; // the relay owns the client now
        this.#initial = null;
        ctx.piped(this);
      } else if (event === RELAY_CONNECT_FAILED) {
        this.#relay = null; // the client fd is ours again
        this.#attemptId = 0;
        this.#connectFailed(target, err);
      } else {
        ctx.finish(this);
      }
    };
    let relay: Relay;
    try {
      relay = relayConnect({ fd: this.#fd, initial: this.#firstBytes(), ended: this.#ended }, address, onEvent, this.#path.relayOptions);
    } catch (err) {
      this.#attemptId = 0;
      ctx.fail(this, backendError(err, this.listener, target));
      return;
    }
    if (this.#attemptId === attempt) this.#relay = relay;
  }

  /** What the backend gets before the client's next bytes: the header, then what was read from the client while held. */
  #firstBytes(): Buffer | null {
    if (this.#header === null) return this.#initial;
    return this.#initial === null ? this.#header : Buffer.concat([this.#header, this.#initial]);
  }

  /** An attempt failed: retry after the backoff, or give up on this one client. */
  #connectFailed(target: Target, err: unknown): void {
    const ctx = this.#path.ctx;
    if (this.#attempts >= ctx.connectAttempts) {
      ctx.fail(this, connectFailed(target, this.#attempts, err));
      return;
    }
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.state === 'connecting') this.#connectOnce(target);
    }, retryDelayMs(ctx.connectBackoffMs, this.#attempts + 1));
  }
}

function noop(): void {}
