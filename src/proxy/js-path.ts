/**
 * The JS data path (ProxyOptions.pipe 'js', PODSOCK_PROXY_PIPE=js): net.Server accepts, connectUpstream()
 * (upstream.ts) connects with its retries, and pipeSockets() (pipe.ts) moves the bytes. The fallback
 * where the addon has no relay, and a way to rule the native relay out when chasing a bug.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { PodsockError, q } from '../errors.js';
import { dupFd } from '../native/fds.js';
import { Connection, type Accepting, type DataPath, type ProxyContext, type ProxyListener } from './data-path.js';
import { clientHeader } from './client-header.js';
import { socketFd } from './native-pipe.js';
import { pipeSockets, resetOrDestroy } from './pipe.js';
import { backendError, connectUpstream, type Target } from './upstream.js';

export class JsPath implements DataPath {
  readonly #ctx: ProxyContext;

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  accept(l: ProxyListener): Accepting {
    const ctx = this.#ctx;
    const dup = dupFd(l.fd);
    let closed = false;
    let starting = false;
    const server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: ctx.bufferBytes }, (client) => {
      let header: Buffer | null;
      try {
        header = clientHeader(l.proxyProtocol ?? 'off', socketFd(client));
      } catch {
        resetOrDestroy(client); // the client is gone before its addresses could be read: as if it never came
        return;
      }
      ctx.admit(new JsConnection(ctx, l.name, client, header));
    });
    server.on('error', (err) => {
      if (closed || starting) return;
      const e = listenError(l, err);
      // After 'listening' this is an accept() error (EMFILE...): net.Server keeps accepting.
      if (server.listening) ctx.warn(e);
      else ctx.listenFailed(e);
    });
    // Pass the backlog explicitly: Node would otherwise call listen() with 511 and shrink the backlog of
    // systemd's socket for every later activation too. It must be the second argument: for a `{ fd }`
    // handle Node 20 ignores `options.backlog` (net.js Server.prototype.listen uses only backlogFromArgs
    // on that path); the unit test checks with ss.
    server.listen({ fd: dup }, ctx.backlog);
    return {
      close(): void {
        closed = true;
        // close() closes only podsock's dup (libuv uv__stream_close); never shutdown() the shared socket.
        server.close();
      },
      listening(): Promise<void> {
        starting = true;
        return listening(server).finally(() => {
          starting = false;
        });
      },
    };
  }
}

/**
 * A client accepted by net.Server. While it is held or connecting only its close matters (a client that
 * leaves ends the connection); once its backend connected, pipeSockets() owns both sockets.
 */
class JsConnection extends Connection {
  readonly #ctx: ProxyContext;
  readonly #client: Socket;
  #upstream: Socket | null = null;
  /** Aborts the current backend connect; replaced for every attempt so a stale one is recognisable. */
  #attempt: AbortController | null = null;
  /** performance.now() when it was piped or last read from either side (with ProxyContext.trackIdle). */
  #activeAt = 0;
  /** The PROXY protocol header, written first on every backend connection, or null. */
  readonly #header: Buffer | null;

  constructor(ctx: ProxyContext, listener: string, client: Socket, header: Buffer | null) {
    super(ctx.nextId(), listener);
    this.#ctx = ctx;
    this.#client = client;
    this.#header = header;
    // Until the pipe owns the socket, an error (a client reset while held) only needs to end the connection.
    client.on('error', noop);
    client.once('close', () => {
      if (this.state === 'held' || this.state === 'connecting') {
        this.#attempt?.abort(new Error('client closed'));
        ctx.finish(this);
      }
    });
  }

  connect(target: Target): void {
    const ctx = this.#ctx;
    const attempt = new AbortController();
    this.#attempt = attempt;
    connectUpstream(target, {
      timeoutMs: ctx.connectTimeoutMs,
      attempts: ctx.connectAttempts,
      backoffMs: ctx.connectBackoffMs,
      highWaterMark: ctx.bufferBytes,
      signal: attempt.signal,
    }).then(
      (upstream) => {
        if (this.#attempt !== attempt || this.state !== 'connecting') {
          // Re-held, closed or destroyed meanwhile: this backend connection is not wanted.
          upstream.destroy();
          return;
        }
        this.#attempt = null;
        this.#upstream = upstream;
        // Before the pipe forwards anything the client sent, even when it sends nothing (server speaks first).
        if (this.#header !== null) upstream.write(this.#header);
        ctx.piped(this);
        const client = this.#client;
        client.off('error', noop);
        pipeSockets(client, upstream, () => ctx.finish(this));
        this.#activeAt = performance.now();
        if (ctx.trackIdle) {
          const touch = (): void => {
            this.#activeAt = performance.now();
          };
          client.on('data', touch);
          upstream.on('data', touch);
        }
      },
      (err: unknown) => {
        if (this.#attempt !== attempt || this.state !== 'connecting') return;
        ctx.fail(this, backendError(err, this.listener, target));
      },
    );
  }

  stopConnecting(): boolean {
    this.#attempt?.abort(new Error('targets unset'));
    this.#attempt = null;
    return true;
  }

  abort(reason: Error): void {
    this.#attempt?.abort(reason);
    this.#attempt = null;
    // A piped connection: the pipe's close handlers finish it.
    resetOrDestroy(this.#client);
    if (this.#upstream) resetOrDestroy(this.#upstream);
  }

  idleMs(now: number): number {
    return now - this.#activeAt;
  }

  bufferedBytes(): number {
    const c = this.#client;
    const u = this.#upstream;
    return c.readableLength + c.writableLength + (u === null ? 0 : u.readableLength + u.writableLength);
  }
}

function noop(): void {}

function listenError(l: ProxyListener, err: Error): PodsockError {
  return new PodsockError('PODSOCK_ERR_LISTEN', `Failed to accept on socket ${q(l.name)}: ${err.message}`, {
    cause: err,
    details: { listener: l.name, fd: l.fd },
  });
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
