/**
 * The per-connection data path in C: hand a client socket and its upstream socket to the addon's relay
 * (native/podsock_native.c, relay()), which moves the bytes with recv/send or splice(2) and never calls
 * into JS per chunk. Same contract as pipeSockets() in pipe.ts (half-close, reset propagation, bounded
 * buffering); it exists because the JS pipe costs several times the CPU of systemd-socket-proxyd per
 * request and per GiB, and its 64 KiB read buffers waiting for GC dominate the RSS under load.
 *
 * Taking over a connection from Node:
 * 1. pause both sockets and drain what Node already read (a held client's readable buffer, or a banner
 *    the backend sent) with read(): those bytes go to the other side before anything else;
 * 2. dup both fds (the dup shares the kernel socket, i.e. the same open file description);
 * 3. destroy() the net.Sockets: Node closes only its fd (libuv uv__stream_close: epoll removal, then
 *    close(2)); it never calls shutdown() from destroy(), and the kernel sends FIN or RST only when the
 *    last fd of the socket is closed, so the peers see nothing (the unit test checks this with TCP);
 * 4. start the relay on the dups.
 */
import type { Socket } from 'node:net';
import { PodsockError } from '../errors.js';
import { dupFd, closeFd, hasRelayConnect, relay, type Relay, type RelayEngineName, type RelayOptions, type RelaySide } from '../sd/native.js';
import { resetOrDestroy, type PipeResult } from './pipe.js';

/** A running pipe, as the proxy holds it: abort() resets both connections (idempotent). */
export interface PipeHandle {
  abort(): void;
  /** Bytes held in user space or in pipes by this connection right now. */
  readonly bufferedBytes: number;
  /** Whether a direction has switched to splice(2) (bulk data). */
  readonly splicing: boolean;
  /** The relay engine moving the bytes (sd/native.ts relayEngine()); 'poll' once it finished. */
  readonly engine: RelayEngineName;
}

/** What Node keeps on a connected net.Socket: its libuv handle, whose `fd` is readable on Linux. */
interface SocketInternals {
  _handle?: { fd?: unknown } | null;
  _readableState?: { ended?: boolean };
}

/** The fd of a connected TCP or unix net.Socket. Throws PODSOCK_ERR_INTERNAL when there is none. */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as SocketInternals)._handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', 'A connected socket has no file descriptor to relay', {
      details: { fd: String(fd) },
    });
  }
  return fd;
}

/**
 * Whether the native data path can be used in this process: the addon loads and has the relay, the
 * acceptor and relayConnect() (the proxy's native mode uses all three).
 */
export function nativePipeAvailable(): boolean {
  return hasRelayConnect();
}

/**
 * Take a connected socket away from Node for the relay: pause it, take what Node already read and
 * whether it saw EOF, dup its fd, then destroy() the net.Socket (which closes only Node's fd: the peer
 * sees nothing). Returns the dup with those bytes; the caller owns the fd. When the dup fails (EMFILE)
 * the socket is reset and the PODSOCK_ERR_NATIVE error thrown.
 */
export function takeOverSocket(socket: Socket): RelaySide {
  socket.pause();
  const { initial, ended } = drain(socket);
  let fd: number;
  try {
    fd = dupFd(socketFd(socket));
  } catch (err) {
    resetOrDestroy(socket);
    throw err;
  }
  socket.destroy();
  return { fd, initial, ended };
}

/**
 * Pipe `client` and `upstream` in the addon until both directions ended or one side failed, then call
 * `onDone` once (null for a clean finish or an abort, else the first error, with the errno name on
 * `code`). Both sockets must be connected; from the call on the relay owns the connections and both
 * net.Sockets are destroyed (without anything reaching the peers). Returns a handle whose abort() resets
 * both connections, as Proxy.destroy() needs. When the take-over itself fails (EMFILE on dup...), both
 * sockets are reset and the failure is passed to `onDone` asynchronously, like a pipe error. `opts`
 * tunes when a direction switches to splice(2) (sd/native.ts RelayOptions).
 */
export function nativePipeSockets(
  client: Socket,
  upstream: Socket,
  onDone: (result: PipeResult) => void,
  opts: RelayOptions = {},
): PipeHandle {
  client.pause();
  upstream.pause();
  const a = drain(client);
  const b = drain(upstream);
  let fdA = -1;
  let fdB = -1;
  let running: Relay;
  try {
    fdA = dupFd(socketFd(client));
    fdB = dupFd(socketFd(upstream));
  } catch (err) {
    if (fdA >= 0) closeFd(fdA);
    resetOrDestroy(client);
    resetOrDestroy(upstream);
    return failed(err as Error, onDone);
  }
  client.destroy();
  upstream.destroy();
  try {
    running = relay({ fd: fdA, ...a }, { fd: fdB, ...b }, onDone, opts);
  } catch (err) {
    // relay() closed both fds (abortively where it got that far); the connections are gone.
    return failed(err as Error, onDone);
  }
  return {
    abort: () => running.abort(),
    get bufferedBytes() {
      return running.bufferedBytes;
    },
    get splicing() {
      return running.splicing;
    },
    get engine() {
      return running.engine;
    },
  };
}

function failed(err: Error, onDone: (result: PipeResult) => void): PipeHandle {
  process.nextTick(onDone, err);
  return { abort: () => undefined, bufferedBytes: 0, splicing: false, engine: 'poll' };
}

/**
 * Take what Node has buffered from `socket` (it must be paused, so read() only returns buffered data and
 * does not start a kernel read now) and whether it has seen EOF (`ended` is set when the EOF arrives,
 * `readableEnded` only once it was emitted, a tick later).
 */
function drain(socket: Socket): { initial: Buffer | null; ended: boolean } {
  const chunks: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
    chunks.push(chunk);
  }
  const state = (socket as unknown as SocketInternals)._readableState;
  const ended = socket.readableEnded || state?.ended === true;
  if (chunks.length === 0) return { initial: null, ended };
  return { initial: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks), ended };
}
