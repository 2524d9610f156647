/**
 * Taking a connected client socket away from Node for the native relay (native/relay.ts relayConnect),
 * which moves the bytes with recv/send, splice(2) or io_uring and never calls into JS per chunk. It
 * exists because the JS pipe costs several times the CPU of systemd-socket-proxyd per request and per
 * GiB, and its 64 KiB read buffers waiting for GC dominate the RSS under load.
 *
 * Taking over a connection from Node:
 * 1. pause the socket and drain what Node already read (a held client's readable buffer) with read():
 *    those bytes go to the backend before anything else;
 * 2. dup its fd (the dup shares the kernel socket, i.e. the same open file description);
 * 3. destroy() the net.Socket: Node closes only its fd (libuv uv__stream_close: epoll removal, then
 *    close(2)); it never calls shutdown() from destroy(), and the kernel sends FIN or RST only when the
 *    last fd of the socket is closed, so the peer sees nothing (the unit test checks this with TCP);
 * 4. start the relay on the dup.
 */
import type { Socket } from 'node:net';
import { PodsockError } from '../errors.js';
import { addonAvailable } from '../native/addon.js';
import { dupFd } from '../native/fds.js';
import type { RelaySide } from '../native/relay.js';
import { resetOrDestroy } from './pipe.js';

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
 * Whether the native data path can be used in this process: the addon loads (its acceptor and
 * relayConnect() are what the proxy's native mode uses).
 */
export function nativePipeAvailable(): boolean {
  return addonAvailable();
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
