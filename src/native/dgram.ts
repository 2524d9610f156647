/**
 * Unix datagram sockets (the addon's dgram functions): the transport of sd_notify(3) messages, with
 * SCM_CREDENTIALS on every datagram received and any SCM_RIGHTS fds handed to the closer (closer.ts).
 */
import type { PodsockError } from '../errors.js';
import { binding, call, checkFd, invalid, nativeError, type RawError } from './addon.js';
import { checkUnixAddress } from './unix-address.js';

/** One datagram as received. pid/uid/gid are -1 when the datagram carried no SCM_CREDENTIALS. */
export interface ReceivedDatagram {
  data: Buffer;
  pid: number;
  uid: number;
  gid: number;
  /** MSG_TRUNC or MSG_CTRUNC was set, or the payload is over 4096 bytes (systemd's NOTIFY_BUFFER_MAX). */
  truncated: boolean;
  /** How many fds came with it via SCM_RIGHTS. They are already handed to the closer thread (closerInfo). */
  fdCount: number;
}

declare const dgramHandleBrand: unique symbol;
type DgramHandle = { readonly [dgramHandleBrand]: true };

interface DgramBinding {
  dgramOpen(bindAddress: string | null | number): DgramHandle;
  dgramSend(handle: DgramHandle, address: string, data: Buffer): void;
  dgramStart(handle: DgramHandle, onBatch: (msgs: ReceivedDatagram[], err: RawError | undefined) => void): void;
  dgramClose(handle: DgramHandle): void;
  dgramSetRef(handle: DgramHandle, on: boolean): void;
  dgramFd(handle: DgramHandle): number;
  dgramProbe(path: string): RawError | null;
}

/**
 * A non-blocking, close-on-exec AF_UNIX SOCK_DGRAM socket. Owns its fd: close() is idempotent and
 * releases the fd and the poll handle, after which the process can exit. A socket that is never closed
 * is cleaned up by the garbage collector once idle; a receiving one stays alive (and, unless unref()'d,
 * keeps the process alive) until close().
 */
export class DgramSocket {
  readonly #handle: DgramHandle;
  readonly #address: string | null;
  #receiving = false;

  /** @internal use openDgram() */
  constructor(handle: DgramHandle, address: string | null) {
    this.#handle = handle;
    this.#address = address;
  }

  /** The bound address ('/path' or '@name'), or null for an unbound (send-only) socket. */
  get address(): string | null {
    return this.#address;
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return binding<DgramBinding>().dgramFd(this.#handle);
  }

  /**
   * Send one datagram to `address` ('/path' or '@name') without blocking: a full receiver queue is an
   * error (EAGAIN), as are ENOENT/ECONNREFUSED for nobody listening. Throws PODSOCK_ERR_NATIVE.
   */
  send(address: string, data: Buffer): void {
    const operation = 'send datagram to';
    checkUnixAddress(operation, address);
    call(operation, address, (b: DgramBinding) => b.dgramSend(this.#handle, address, data));
  }

  /**
   * Start delivering received datagrams: `onBatch` gets up to 64 at a time (one call per event-loop
   * wake-up, so a flood cannot starve the loop). fds passed with a datagram are closed before delivery.
   * A receive error stops receiving and goes to `onError` (thrown as an uncaught exception when there is
   * none). Call once per socket; only useful on a bound socket.
   */
  startReceiving(onBatch: (msgs: ReceivedDatagram[]) => void, onError?: (err: PodsockError) => void): void {
    const address = this.#address ?? undefined;
    if (this.#receiving) throw invalid('receive on datagram socket', address, 'already receiving');
    call('receive on', address, (b: DgramBinding) =>
      b.dgramStart(this.#handle, (msgs, err) => {
        if (msgs.length > 0) onBatch(msgs);
        if (err !== undefined) {
          const wrapped = nativeError('receive on', address, err);
          if (onError === undefined) throw wrapped;
          onError(wrapped);
        }
      }),
    );
    this.#receiving = true;
  }

  /** Let a receiving socket keep the process alive (the default). */
  ref(): this {
    binding<DgramBinding>().dgramSetRef(this.#handle, true);
    return this;
  }

  /** Do not keep the process alive just for this socket. */
  unref(): this {
    binding<DgramBinding>().dgramSetRef(this.#handle, false);
    return this;
  }

  /** Stop receiving and close the fd. Idempotent. Does not remove a bound path (the owner does). */
  close(): void {
    binding<DgramBinding>().dgramClose(this.#handle);
  }
}

/**
 * Open a unix datagram socket. With `bindAddress` ('/path' or '@name') it is bound there with
 * SO_PASSCRED (every datagram carries the sender's pid/uid/gid) and a bounded receive buffer;
 * with null it is unbound, for sending. Throws PODSOCK_ERR_NATIVE (EADDRINUSE, ENOENT, a too-long
 * address…).
 */
export function openDgram(bindAddress: string | null): DgramSocket {
  const operation = bindAddress === null ? 'open datagram socket' : 'bind datagram socket to';
  if (bindAddress !== null) checkUnixAddress(operation, bindAddress);
  const handle = call(operation, bindAddress ?? undefined, (b: DgramBinding) => b.dgramOpen(bindAddress));
  return new DgramSocket(handle, bindAddress);
}

/**
 * Adopt `fd`, a unix datagram socket already bound at `address` (by podsock-launch before Node started),
 * as a DgramSocket that owns it from now on (close-on-exec and non-blocking are set). Throws
 * PODSOCK_ERR_NATIVE: EBADF, or ENOTSOCK for anything but a unix datagram socket.
 */
export function adoptDgram(fd: number, address: string): DgramSocket {
  const operation = 'adopt datagram socket';
  checkFd(operation, fd);
  checkUnixAddress(operation, address);
  const handle = call(operation, String(fd), (b: DgramBinding) => b.dgramOpen(fd));
  return new DgramSocket(handle, address);
}

/**
 * Whether a socket is bound at the unix socket file `path`, asked with a datagram connect(2) that sends
 * nothing: 'bound' (a datagram socket, or a stream socket: EPROTOTYPE), 'unbound' (ECONNREFUSED: the file
 * is there and nobody holds it, unix(7)), 'unknown' for anything else (ENOENT, EACCES...). Throws
 * PODSOCK_ERR_NATIVE only for an address that cannot be a unix socket address.
 */
export function probeUnixSocket(path: string): 'bound' | 'unbound' | 'unknown' {
  const operation = 'probe unix socket';
  checkUnixAddress(operation, path);
  const err = call(operation, path, (b: DgramBinding) => b.dgramProbe(path));
  if (err === null || err.code === 'EPROTOTYPE') return 'bound';
  return err.code === 'ECONNREFUSED' ? 'unbound' : 'unknown';
}
