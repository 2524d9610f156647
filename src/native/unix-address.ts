/**
 * Whether a string can be a unix socket address (unix(7)): the check that the notify client and
 * server, the listeners, the datagram sockets and the relay's connect make before an address reaches C.
 */
import { invalid } from './addon.js';

/** sizeof(sockaddr_un.sun_path) on Linux (unix(7)). */
const UNIX_PATH_MAX = 108;

/**
 * Why `address` cannot be used as a unix socket address, or undefined if it can. '/path' (or a relative
 * path) must fit sun_path with its terminating NUL (at most 107 bytes); '@name' is an abstract name of
 * 1 to 107 bytes. Embedded NULs are refused. Pure; used by the notify client and server for early,
 * specific error messages.
 */
export function unixAddressProblem(address: string): string | undefined {
  if (address.length === 0) return 'the address is empty';
  if (address.includes('\0')) return 'the address contains a NUL byte';
  const bytes = Buffer.byteLength(address);
  if (address.startsWith('@')) {
    if (bytes === 1) return 'the abstract name after \'@\' is empty';
    if (bytes - 1 > UNIX_PATH_MAX - 1) {
      return `the abstract name is ${bytes - 1} bytes, longer than the ${UNIX_PATH_MAX - 1} a unix socket address holds`;
    }
    return undefined;
  }
  if (bytes > UNIX_PATH_MAX - 1) {
    return `the path is ${bytes} bytes, longer than the ${UNIX_PATH_MAX - 1} a unix socket address holds`;
  }
  return undefined;
}

/** Throw PODSOCK_ERR_NATIVE (EINVAL) for `operation` when `address` is no unix socket address. */
export function checkUnixAddress(operation: string, address: string): void {
  if (typeof address !== 'string') throw invalid(operation, String(address), 'expected a string address');
  const problem = unixAddressProblem(address);
  if (problem !== undefined) throw invalid(operation, address, problem);
}
