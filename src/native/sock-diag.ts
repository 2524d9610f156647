/** Counting a unix listener's connections through sock_diag(7) netlink (native/sock-diag.c). */
import { call, checkFd } from './addon.js';

interface SockDiagBinding {
  unixConnections(fds: number[]): number;
}

/**
 * The connections of the listening unix sockets `fds` (at most 64), accepted or still in the accept queue,
 * from the kernel's socket table through sock_diag(7) netlink, each counted once. Unlike
 * /proc/net/unix, whose rows a socket name with a newline can forge, nothing here is text.
 * Throws PODSOCK_ERR_NATIVE: its errno (nativeErrno) is EAFNOSUPPORT or EPROTONOSUPPORT when the kernel
 * has no sock_diag for unix sockets, ESRCH when an fd is not a unix listener of this network namespace.
 */
export function unixConnections(fds: readonly number[]): number {
  for (const fd of fds) checkFd('count unix connections', fd);
  return call('count unix connections', fds.join(','), (b: SockDiagBinding) => b.unixConnections([...fds]));
}
