/**
 * The acceptor (the addon's accept functions): accept4(2) on a listening stream socket on Node's event
 * loop, handing each new connection's fd to JS without creating a net.Socket for it.
 */
import type { PodsockError } from '../errors.js';
import { binding, checkFd, checkInt, nativeError, type RawError } from './addon.js';

declare const acceptHandleBrand: unique symbol;
type AcceptHandle = { readonly [acceptHandleBrand]: true };

interface AcceptorBinding {
  acceptStart(fd: number, backlog: number, onAccept: (fd: number, err: RawError | undefined) => void): AcceptHandle;
  acceptStop(handle: AcceptHandle): void;
}

/**
 * Accepting on a listening stream socket in C (see acceptConnections()). close() stops accepting and
 * closes the acceptor's fd; idempotent, and may be called from inside onAccept, which then is not
 * called again (the next connections stay queued in the kernel).
 */
export class Acceptor {
  readonly #handle: AcceptHandle;

  /** @internal use acceptConnections() */
  constructor(handle: AcceptHandle) {
    this.#handle = handle;
  }

  close(): void {
    binding<AcceptorBinding>().acceptStop(this.#handle);
  }
}

/**
 * Accept connections on the listening stream socket `fd` (accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC on
 * Node's event loop; TCP connections get TCP_NODELAY) and pass each new connection's fd to `onAccept`,
 * which owns it. listen(fd, backlog) is called first, as Node's server.listen() would. The acceptor owns
 * `fd` once this returns (close() closes it, never shutdown()s it); when it throws, the caller still
 * does. An accept error (EMFILE...) goes to `onError` and pauses accepting for 100 ms instead of
 * spinning on the queued connection. An active acceptor keeps the process alive. Throws
 * PODSOCK_ERR_NATIVE (e.g. EBADF, or EINVAL from listen() for a socket that cannot listen).
 */
export function acceptConnections(fd: number, backlog: number, onAccept: (fd: number) => void, onError: (err: PodsockError) => void): Acceptor {
  const operation = 'accept on fd';
  checkFd(operation, fd);
  checkInt(operation, String(fd), 'the backlog', backlog, 0x7fffffff);
  const b = binding<AcceptorBinding>();
  try {
    return new Acceptor(
      b.acceptStart(fd, backlog, (accepted, err) => {
        if (err === undefined) onAccept(accepted);
        else onError(nativeError(operation, String(fd), err));
      }),
    );
  } catch (err) {
    throw nativeError(operation, String(fd), err);
  }
}
