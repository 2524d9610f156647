/**
 * Raw fds and listening sockets (the addon's fd functions): duplicate, close, reset, inspect an fd, and
 * create a listening TCP or unix stream socket that Node does not adopt.
 */
import { isIP } from '../ip.js';
import { q } from '../errors.js';
import { call, checkFd, checkInt, invalid } from './addon.js';
import { checkUnixAddress } from './unix-address.js';

/** What a file descriptor is, as far as podsock cares (from SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN, getsockname). */
export interface FdInfo {
  fd: number;
  family: 'inet' | 'inet6' | 'unix' | 'other';
  type: 'stream' | 'dgram' | 'seqpacket' | 'other';
  listening: boolean;
  /** inet/inet6: the local address, e.g. '127.0.0.1' or '::'. */
  host?: string;
  /** inet/inet6: the local port (the real one after binding port 0). */
  port?: number;
  /** unix: the bound path, '@name' for an abstract name, '' when unnamed. */
  path?: string;
}

/** The peer of a connected socket: an IP endpoint, or a unix path ('@name' abstract, '' unnamed); {} for another family. */
export type PeerAddress = { host: string; port: number } | { path: string } | Record<string, never>;

/** What listenSocket() creates: a TCP listener or a bound UDP socket on a numeric host, or a unix stream listener. */
export type ListenSpec =
  | { kind: 'tcp'; host: string; port: number; backlog: number; ipv6Only?: boolean }
  | { kind: 'udp'; host: string; port: number; ipv6Only?: boolean }
  | { kind: 'unix'; path: string; backlog: number };

interface FdsBinding {
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  resetFd(fd: number): void;
  inspectFd(fd: number): FdInfo;
  peerAddress(fd: number): PeerAddress;
  listenTcp(host: string, port: number, backlog: number, ipv6Only: number): number;
  listenUnix(path: string, backlog: number): number;
  bindUdp(host: string, port: number, ipv6Only: number): number;
}

/**
 * Duplicate `fd` with fcntl(F_DUPFD_CLOEXEC, 3): the copy is the lowest free fd >= 3 and close-on-exec.
 * Throws PODSOCK_ERR_NATIVE (e.g. EBADF, EMFILE).
 */
export function dupFd(fd: number): number {
  checkFd('duplicate fd', fd);
  return call('duplicate fd', String(fd), (b: FdsBinding) => b.dupFd(fd));
}

/** Close `fd` (close(2); EINTR counts as closed). Throws PODSOCK_ERR_NATIVE (EBADF) for a closed fd. */
export function closeFd(fd: number): void {
  checkFd('close fd', fd);
  call('close fd', String(fd), (b: FdsBinding) => b.closeFd(fd));
}

/**
 * Close a stream socket abortively (SO_LINGER 0: the peer sees a TCP reset, not an EOF that could pass
 * for a complete reply; a unix socket just closes). Throws PODSOCK_ERR_NATIVE (EBADF).
 */
export function resetFd(fd: number): void {
  checkFd('reset fd', fd);
  call('reset fd', String(fd), (b: FdsBinding) => b.resetFd(fd));
}

/**
 * Describe `fd`: family, type, whether it is listening, and its local address (abstract unix names as
 * '@name', unnamed unix sockets as path ''). A non-socket (pipe, file) is family/type 'other', not
 * listening. A closed fd throws PODSOCK_ERR_NATIVE with EBADF.
 */
export function inspectFd(fd: number): FdInfo {
  checkFd('inspect fd', fd);
  return call('inspect fd', String(fd), (b: FdsBinding) => b.inspectFd(fd));
}

/**
 * The address of the peer of connected socket `fd` (getpeername(2)), in inspectFd()'s form: host and
 * port for IPv4 and IPv6 (an IPv4 client of a dual-stack socket as '::ffff:a.b.c.d'), path for unix
 * ('' when the peer is unnamed, as most unix clients are). Throws PODSOCK_ERR_NATIVE: ENOTCONN when
 * the peer is gone (or `fd` is not connected), ENOTSOCK, EBADF.
 */
export function peerAddress(fd: number): PeerAddress {
  checkFd('read peer address', fd);
  return call('read peer address', String(fd), (b: FdsBinding) => b.peerAddress(fd));
}

/**
 * Create a listening stream socket (or a bound UDP socket) and return its fd (blocking, close-on-exec),
 * not adopted by Node.
 * TCP: `host` is an IPv4 or IPv6 literal ('0.0.0.0', '::', '::1'), SO_REUSEADDR is set, port 0 picks a
 * free port (read it back with inspectFd), `ipv6Only` sets IPV6_V6ONLY (unset: kernel default).
 * unix: `path` is a filesystem path or '@name' (abstract). An existing socket file is not removed.
 * Throws PODSOCK_ERR_NATIVE (EADDRINUSE, EACCES, EINVAL for a malformed host…).
 */
export function listenSocket(spec: ListenSpec): number {
  if (spec.kind === 'tcp' || spec.kind === 'udp') {
    const address = spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
    const operation = spec.kind === 'tcp' ? 'listen on TCP address' : 'bind UDP address';
    if (isIP(spec.host) === 0) throw invalid(operation, address, `${q(spec.host)} is not an IPv4 or IPv6 address`);
    checkInt(operation, address, 'the port', spec.port, 65535);
    if (spec.kind === 'udp') {
      const v6only = spec.ipv6Only === undefined ? -1 : spec.ipv6Only ? 1 : 0;
      return call(operation, address, (b: FdsBinding) => b.bindUdp(spec.host, spec.port, v6only));
    }
    checkInt(operation, address, 'the backlog', spec.backlog, 0x7fffffff);
    const v6only = spec.ipv6Only === undefined ? -1 : spec.ipv6Only ? 1 : 0;
    return call(operation, address, (b: FdsBinding) => b.listenTcp(spec.host, spec.port, spec.backlog, v6only));
  }
  const operation = 'listen on unix socket';
  checkUnixAddress(operation, spec.path);
  checkInt(operation, spec.path, 'the backlog', spec.backlog, 0x7fffffff);
  return call(operation, spec.path, (b: FdsBinding) => b.listenUnix(spec.path, spec.backlog));
}
