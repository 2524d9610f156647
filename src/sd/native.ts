/**
 * The one module that loads the native addon (native/podsock_native.c). It wraps every native call in a
 * typed function, validates arguments before they reach C, and turns errno failures into
 * PodsockError('PODSOCK_ERR_NATIVE') naming the operation, the address and the errno name.
 *
 * Why an addon at all: core Node cannot open unix datagram sockets (dgram knows only udp4/udp6, and
 * net.connect() to a datagram path fails with EPROTOTYPE), cannot receive SCM_CREDENTIALS, and cannot
 * duplicate or inspect a raw fd (Node's dgram.createSocket() documents only 'udp4' and 'udp6').
 */
import { fileURLToPath } from 'node:url';
import { isIP } from '../ip.js';
import { PodsockError, q } from '../errors.js';

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

/** What listenSocket() creates: a TCP listener on a numeric host, or a unix stream listener. */
export type ListenSpec =
  | { kind: 'tcp'; host: string; port: number; backlog: number; ipv6Only?: boolean }
  | { kind: 'unix'; path: string; backlog: number };

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

/** sizeof(sockaddr_un.sun_path) on Linux (unix(7)). */
export const UNIX_PATH_MAX = 108;

declare const dgramHandleBrand: unique symbol;
type DgramHandle = { readonly [dgramHandleBrand]: true };
declare const relayHandleBrand: unique symbol;
/** A relay is a number to JS (a slot and its generation in the addon), freed as soon as it finished. */
type RelayHandle = number & { readonly [relayHandleBrand]: true };
declare const acceptHandleBrand: unique symbol;
type AcceptHandle = { readonly [acceptHandleBrand]: true };
declare const processHandleBrand: unique symbol;
type ProcessHandle = { readonly [processHandleBrand]: true };

interface RawError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
}

interface Binding {
  dupFd(fd: number): number;
  closeFd(fd: number): void;
  setCloexec(fd: number, on: boolean): void;
  inspectFd(fd: number): FdInfo;
  listenTcp(host: string, port: number, backlog: number, ipv6Only: number): number;
  listenUnix(path: string, backlog: number): number;
  dgramOpen(bindAddress: string | null | number): DgramHandle;
  dgramSend(handle: DgramHandle, address: string, data: Buffer): void;
  dgramStart(handle: DgramHandle, onBatch: (msgs: ReceivedDatagram[], err: RawError | undefined) => void): void;
  dgramClose(handle: DgramHandle): void;
  dgramSetRef(handle: DgramHandle, on: boolean): void;
  dgramFd(handle: DgramHandle): number;
  relay?(
    fdA: number,
    fdB: number,
    initialAtoB: Buffer | null,
    aEnded: boolean,
    initialBtoA: Buffer | null,
    bEnded: boolean,
    spliceAfter: number,
    onDone: (err: RawError | null) => void,
  ): RelayHandle;
  relayAbort?(handle: RelayHandle): void;
  relayInfo?(handle: RelayHandle): { active: boolean; buffered: number; splicing: boolean; engine: RelayEngineName; idleMs?: number };
  relayConnect?(
    clientFd: number,
    address: string,
    port: number,
    timeoutMs: number,
    initial: Buffer | null,
    ended: boolean,
    spliceAfter: number,
    onEvent: (err: RawError | null, event: RelayEvent) => void,
    netnsFd?: number,
  ): RelayHandle;
  relayCancel?(handle: RelayHandle): boolean;
  relayEngine?(mode?: 'auto' | 'poll'): { engine: RelayEngineName; reason: RawError | null; waiting: number; live: number; lent?: number };
  resetFd?(fd: number): void;
  acceptStart?(fd: number, backlog: number, onAccept: (fd: number, err: RawError | undefined) => void): AcceptHandle;
  acceptStop?(handle: AcceptHandle): void;
  spawnSupported?(): boolean;
  spawnProcess?(
    file: string,
    argv: string[],
    envp: string[],
    stdio: number[],
    onExit: (code: number, signal: number) => void,
    listenPid?: boolean,
  ): { pid: number; handle: ProcessHandle };
  killProcess?(handle: ProcessHandle, signal: number): boolean;
  adoptProcess?(pid: number, onExit: (code: number, signal: number) => void, keepAlive?: boolean): { pid: number; handle: ProcessHandle };
  setChildSubreaper?(on: boolean): void;
  mallocTrim?(): boolean;
  relayTrim?(): number;
  closerInfo?(): CloserInfo;
  unixConnections?(fds: number[]): number;
  dropFilePages?(start: bigint, length: bigint): void;
  netnsOpen?(pid: number): { fd: number; ppid: number };
  netnsSocket?(nsfd: number, family: 4 | 6): number;
}

/**
 * The queue of fds waiting to be closed off the event loop (native/closer.c): fds passed with notify
 * datagrams, and datagram sockets whose queues may still hold some.
 */
export interface CloserInfo {
  /** fds waiting in the queue. */
  queued: number;
  /** fds whose close() is running on the closer thread (0 or 1). */
  closing: number;
  /** Slots held for a receive in progress. */
  reserved: number;
  /** The most fds queued or closing at once. */
  capacity: number;
  /** The part of `capacity` passed fds may take; receiving pauses while less than one message's worth is free. */
  peerCapacity: number;
  /** fds closed since the addon was loaded. */
  closed: number;
  /** The closer thread exists (only while there is something to close). */
  running: boolean;
}

// Both src/sd/native.ts (tests run the .ts) and dist/sd/native.js sit two levels below the package root.
const ADDON_PATH = '../../build/Release/podsock_native.node';
let binding: Binding | undefined;

/** Load the addon on first use, so importing this module never fails by itself. */
function native(): Binding {
  if (binding === undefined) {
    try {
      // process.dlopen with the absolute path: require() would first search for the file and look for a
      // package.json self-reference, a millisecond of podsock's start-up for a path that is fixed.
      const m = { exports: {} as Binding };
      process.dlopen(m, fileURLToPath(new URL(ADDON_PATH, import.meta.url)));
      binding = m.exports;
    } catch (err) {
      throw new PodsockError(
        'PODSOCK_ERR_NATIVE',
        `Failed to load the native addon ${q(ADDON_PATH)}: ${(err as Error).message} (build it with 'npx node-gyp rebuild')`,
        { cause: err, details: { operation: 'load addon' } },
      );
    }
  }
  return binding;
}

/** Turn what the addon threw into a PodsockError naming the operation, the address and the errno. */
function nativeError(operation: string, address: string | undefined, err: unknown): PodsockError {
  const raw = err as RawError;
  const where = address === undefined ? '' : ` ${q(address)}`;
  return new PodsockError('PODSOCK_ERR_NATIVE', `Failed to ${operation}${where}: ${raw.message}`, {
    cause: err,
    details: { operation, address, errno: raw.code, syscall: raw.syscall },
  });
}

function invalid(operation: string, address: string | undefined, reason: string): PodsockError {
  const where = address === undefined ? '' : ` ${q(address)}`;
  return new PodsockError('PODSOCK_ERR_NATIVE', `Failed to ${operation}${where}: ${reason}`, {
    details: { operation, address, errno: 'EINVAL' },
  });
}

function call<T>(operation: string, address: string | undefined, fn: (b: Binding) => T): T {
  const b = native();
  try {
    return fn(b);
  } catch (err) {
    throw nativeError(operation, address, err);
  }
}

function checkFd(operation: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw invalid(operation, String(fd), 'expected a non-negative integer file descriptor');
  }
}

function checkInt(operation: string, address: string, name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(operation, address, `expected ${name} to be an integer from 0 to ${max}, got ${q(value)}`);
  }
}

/** The errno name ('ENOENT', 'EAGAIN'…) of a PODSOCK_ERR_NATIVE error, for callers that branch on it. */
export function nativeErrno(err: unknown): string | undefined {
  if (err instanceof PodsockError && err.code === 'PODSOCK_ERR_NATIVE') {
    const errno = err.details.errno;
    return typeof errno === 'string' ? errno : undefined;
  }
  return undefined;
}

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

function checkUnixAddress(operation: string, address: string): void {
  if (typeof address !== 'string') throw invalid(operation, String(address), 'expected a string address');
  const problem = unixAddressProblem(address);
  if (problem !== undefined) throw invalid(operation, address, problem);
}

/**
 * Duplicate `fd` with fcntl(F_DUPFD_CLOEXEC, 3): the copy is the lowest free fd >= 3 and close-on-exec.
 * Throws PODSOCK_ERR_NATIVE (e.g. EBADF, EMFILE).
 */
export function dupFd(fd: number): number {
  checkFd('duplicate fd', fd);
  return call('duplicate fd', String(fd), (b) => b.dupFd(fd));
}

/** Close `fd` (close(2); EINTR counts as closed). Throws PODSOCK_ERR_NATIVE (EBADF) for a closed fd. */
export function closeFd(fd: number): void {
  checkFd('close fd', fd);
  call('close fd', String(fd), (b) => b.closeFd(fd));
}

/** Set or clear FD_CLOEXEC on `fd`, leaving its other flags alone. Throws PODSOCK_ERR_NATIVE. */
export function setCloexec(fd: number, on: boolean): void {
  checkFd('set close-on-exec on fd', fd);
  call('set close-on-exec on fd', String(fd), (b) => b.setCloexec(fd, on));
}

/**
 * Describe `fd`: family, type, whether it is listening, and its local address (abstract unix names as
 * '@name', unnamed unix sockets as path ''). A non-socket (pipe, file) is family/type 'other', not
 * listening. A closed fd throws PODSOCK_ERR_NATIVE with EBADF.
 */
export function inspectFd(fd: number): FdInfo {
  checkFd('inspect fd', fd);
  return call('inspect fd', String(fd), (b) => b.inspectFd(fd));
}

/**
 * Create a listening stream socket and return its fd (blocking, close-on-exec), not adopted by Node.
 * TCP: `host` is an IPv4 or IPv6 literal ('0.0.0.0', '::', '::1'), SO_REUSEADDR is set, port 0 picks a
 * free port (read it back with inspectFd), `ipv6Only` sets IPV6_V6ONLY (unset: kernel default).
 * unix: `path` is a filesystem path or '@name' (abstract). An existing socket file is not removed.
 * Throws PODSOCK_ERR_NATIVE (EADDRINUSE, EACCES, EINVAL for a malformed host…).
 */
export function listenSocket(spec: ListenSpec): number {
  if (spec.kind === 'tcp') {
    const address = spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
    const operation = 'listen on TCP address';
    if (isIP(spec.host) === 0) throw invalid(operation, address, `${q(spec.host)} is not an IPv4 or IPv6 address`);
    checkInt(operation, address, 'the port', spec.port, 65535);
    checkInt(operation, address, 'the backlog', spec.backlog, 0x7fffffff);
    const v6only = spec.ipv6Only === undefined ? -1 : spec.ipv6Only ? 1 : 0;
    return call(operation, address, (b) => b.listenTcp(spec.host, spec.port, spec.backlog, v6only));
  }
  const operation = 'listen on unix socket';
  checkUnixAddress(operation, spec.path);
  checkInt(operation, spec.path, 'the backlog', spec.backlog, 0x7fffffff);
  return call(operation, spec.path, (b) => b.listenUnix(spec.path, spec.backlog));
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
    return native().dgramFd(this.#handle);
  }

  /**
   * Send one datagram to `address` ('/path' or '@name') without blocking: a full receiver queue is an
   * error (EAGAIN), as are ENOENT/ECONNREFUSED for nobody listening. Throws PODSOCK_ERR_NATIVE.
   */
  send(address: string, data: Buffer): void {
    const operation = 'send datagram to';
    checkUnixAddress(operation, address);
    call(operation, address, (b) => b.dgramSend(this.#handle, address, data));
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
    call('receive on', address, (b) =>
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
    native().dgramSetRef(this.#handle, true);
    return this;
  }

  /** Do not keep the process alive just for this socket. */
  unref(): this {
    native().dgramSetRef(this.#handle, false);
    return this;
  }

  /** Stop receiving and close the fd. Idempotent. Does not remove a bound path (the owner does). */
  close(): void {
    native().dgramClose(this.#handle);
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
  const handle = call(operation, bindAddress ?? undefined, (b) => b.dgramOpen(bindAddress));
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
  const handle = call(operation, String(fd), (b) => b.dgramOpen(fd));
  return new DgramSocket(handle, address);
}

/** One side of a relay: its fd (owned by the relay from the call on) and what was read from it before. */
export interface RelaySide {
  fd: number;
  /** Bytes already read from this side that must reach the other side first, or null. */
  initial: Buffer | null;
  /** This side had already sent EOF. */
  ended: boolean;
}

export interface RelayOptions {
  /**
   * Consecutive reads that fill the 64 KiB copy buffer before a direction switches to splice(2) through
   * a 256 KiB pipe (zero copy, for bulk transfers). 0 splices from the start, -1 never. Default 4.
   */
  spliceAfter?: number;
}

/** Default of RelayOptions.spliceAfter. */
export const RELAY_SPLICE_AFTER = 4;

/**
 * A running native relay (see relay()). abort() resets both connections now; idempotent, and harmless
 * once the relay finished. `active` is false once both fds are closed; `bufferedBytes` is what the
 * relay holds in user space or in its pipes (at most 64 KiB or 256 KiB per direction).
 */
export class Relay {
  readonly #handle: RelayHandle;

  /** @internal use relay() */
  constructor(handle: RelayHandle) {
    this.#handle = handle;
  }

  get active(): boolean {
    return nativeRelay('relayInfo').relayInfo(this.#handle).active;
  }

  get bufferedBytes(): number {
    return nativeRelay('relayInfo').relayInfo(this.#handle).buffered;
  }

  /** Whether either direction has switched to splice(2). */
  get splicing(): boolean {
    return nativeRelay('relayInfo').relayInfo(this.#handle).splicing;
  }

  /** The engine moving its bytes (see relayEngine()); 'poll' once it finished. */
  get engine(): RelayEngineName {
    return nativeRelay('relayInfo').relayInfo(this.#handle).engine;
  }

  /**
   * Milliseconds since the relay started relaying (for relayConnect(): since it connected) or last moved
   * bytes, saw an EOF or an error, by the event loop's clock; 0 while connecting and once finished.
   */
  get idleMs(): number {
    return nativeRelay('relayInfo').relayInfo(this.#handle).idleMs ?? 0;
  }

  abort(): void {
    nativeRelay('relayAbort').relayAbort(this.#handle);
  }

  /**
   * A relayConnect() relay that is still connecting stops and gives its client fd back to the caller,
   * open and unread, with no further event (true). false once it connected or ended (or for relay()).
   */
  cancel(): boolean {
    return nativeRelay('relayCancel').relayCancel(this.#handle);
  }
}

type NativeRelayCall = 'relay' | 'relayAbort' | 'relayInfo' | 'relayConnect' | 'relayCancel' | 'relayEngine' | 'resetFd' | 'acceptStart' | 'acceptStop';
type RelayBinding<K extends NativeRelayCall> = Binding & Required<Pick<Binding, K>>;

function nativeRelay<K extends NativeRelayCall>(name: K): RelayBinding<K> {
  const b = native();
  if (typeof b[name] !== 'function') {
    throw new PodsockError('PODSOCK_ERR_NATIVE', `The native addon ${q(ADDON_PATH)} has no ${q(name)} (rebuild it with 'npx node-gyp rebuild')`, {
      details: { operation: name, errno: 'ENOSYS' },
    });
  }
  return b as RelayBinding<K>;
}

/**
 * How relays move bytes: 'io_uring' (Linux 6.1+: one ring per thread, a single system call for many
 * sends and receives) or 'poll' (recv/send per chunk, woken by Node's epoll), which is what every relay
 * uses when the ring cannot be set up.
 */
export type RelayEngineName = 'io_uring' | 'poll';

export interface RelayEngine {
  engine: RelayEngineName;
  /** Why relays poll: the step that failed and its errno ('io_uring_setup: EPERM ...'), or null. */
  reason: string | null;
  /** Relays on the ring not yet finished, and how many of their directions wait for a free buffer. */
  live: number;
  waiting: number;
  /** Provided buffers of the ring's pool held by relays right now (received, not yet all sent); 0 when polling. */
  lent: number;
}

/**
 * The engine relays started from now on use in this thread (setting up the io_uring on first call).
 * `mode` 'poll' makes new relays poll (relays already running keep their engine), 'auto' undoes it.
 */
export function relayEngine(mode?: 'auto' | 'poll'): RelayEngine {
  if (mode !== undefined && mode !== 'auto' && mode !== 'poll') {
    throw new PodsockError('PODSOCK_ERR_NATIVE', `Invalid relay engine mode ${q(mode)}: expected 'auto' or 'poll'`, {
      details: { operation: 'relayEngine', errno: 'EINVAL' },
    });
  }
  const r = nativeRelay('relayEngine').relayEngine(mode);
  return { engine: r.engine, reason: r.reason === null ? null : r.reason.message, live: r.live, waiting: r.waiting, lent: r.lent ?? 0 };
}

/** Whether the loaded addon has the native relay (an addon built before it existed does not). */
export function hasRelay(): boolean {
  try {
    return typeof native().relay === 'function';
  } catch {
    return false;
  }
}

/** Whether the loaded addon can also accept and connect (acceptConnections(), relayConnect()). */
export function hasRelayConnect(): boolean {
  try {
    const b = native();
    return typeof b.relayConnect === 'function' && typeof b.acceptStart === 'function';
  } catch {
    return false;
  }
}

/**
 * Relay bytes between two connected stream sockets (TCP or unix) in C, in both directions, until both
 * have sent EOF or one fails: `a.initial` goes to b first (and `b.initial` to a), EOF from one side
 * becomes shutdown(SHUT_WR) on the other once everything before it was written, an error on either
 * side resets both (SO_LINGER 0), and at most one buffer or pipe is held per direction (reading stops
 * while the other side is not writable). The relay owns both fds from the call on, also when it throws.
 * `onDone` is called once, asynchronously, after both fds are closed: null for a clean finish or an
 * abort(), else an Error whose `code` is the errno name ('ECONNRESET', 'EPIPE'...) and `syscall` the
 * failing call. A running relay keeps the process alive; none is left once every relay finished.
 * Throws PODSOCK_ERR_NATIVE (invalid fds, an addon without the relay, setup failures).
 */
export function relay(a: RelaySide, b: RelaySide, onDone: (err: NodeJS.ErrnoException | null) => void, opts: RelayOptions = {}): Relay {
  const operation = 'relay fds';
  const address = `${a.fd},${b.fd}`;
  checkFd(operation, a.fd);
  checkFd(operation, b.fd);
  if (a.fd === b.fd) throw invalid(operation, address, 'expected two different fds');
  const spliceAfter = opts.spliceAfter ?? RELAY_SPLICE_AFTER;
  if (!Number.isInteger(spliceAfter) || spliceAfter < -1 || spliceAfter > 0x7fffffff) {
    throw invalid(operation, address, `expected spliceAfter to be an integer from -1 to ${0x7fffffff}, got ${q(spliceAfter)}`);
  }
  const b_ = nativeRelay('relay');
  try {
    const handle = b_.relay(a.fd, b.fd, a.initial, a.ended, b.initial, b.ended, spliceAfter, onDone);
    return new Relay(handle);
  } catch (err) {
    throw nativeError(operation, address, err);
  }
}

/** What relayConnect() reports through its onEvent callback. */
export const RELAY_CONNECTED = 0;
export const RELAY_DONE = 1;
export const RELAY_CONNECT_FAILED = 2;
export type RelayEvent = typeof RELAY_CONNECTED | typeof RELAY_DONE | typeof RELAY_CONNECT_FAILED;

/** A backend relayConnect() can reach without a name lookup: a numeric host and a port, or a unix path. */
/** `netns`: an fd from netnsOpen(); the backend socket is created inside that network namespace. */
export type ConnectTarget = { host: string; port: number; netns?: number } | { path: string };

export interface RelayConnectOptions extends RelayOptions {
  /** Deadline of the connect in milliseconds (ETIMEDOUT after it). */
  timeoutMs: number;
}

/**
 * Connect to `target` in C and relay between `client.fd` and the new connection, as relay() does
 * (`client.initial` goes to the backend first, `client.ended` passes the client's EOF on). One call per
 * connection; no Node socket, promise or timer exists for the backend connection. `onEvent(err, event)`
 * is called from a later event-loop iteration, except RELAY_CONNECTED when the connect completed at once
 * (usual on loopback), which is called before relayConnect() returns:
 * - RELAY_CONNECTED (err null), at most once: the relay owns the client fd from now on;
 * - RELAY_CONNECT_FAILED: socket(), connect() or the deadline failed (`err.code` 'ECONNREFUSED',
 *   'ENOENT', 'EAGAIN' for a full unix backlog, 'ETIMEDOUT'...); the client fd is the caller's again,
 *   open and unread, so it can retry or close it (resetFd());
 * - RELAY_DONE, after RELAY_CONNECTED: as relay()'s onDone (null for a clean end or an abort()).
 * The returned Relay's abort() resets both sides in any phase; cancel() gives a connecting client back
 * without further events. `target.host` must be an IP literal (the caller resolves names). Throws
 * PODSOCK_ERR_NATIVE for invalid arguments, leaving the client fd with the caller.
 */
export function relayConnect(
  client: RelaySide,
  target: ConnectTarget,
  onEvent: (err: NodeJS.ErrnoException | null, event: RelayEvent) => void,
  opts: RelayConnectOptions,
): Relay {
  const operation = 'connect to backend';
  const address = 'path' in target ? target.path : target.host;
  const port = 'path' in target ? -1 : target.port;
  checkFd(operation, client.fd);
  if ('path' in target) checkUnixAddress(operation, target.path);
  else {
    if (isIP(target.host) === 0) throw invalid(operation, target.host, 'expected an IPv4 or IPv6 address');
    checkInt(operation, target.host, 'the port', port, 65535);
    if (target.netns !== undefined) checkFd(operation, target.netns);
  }
  checkInt(operation, address, 'timeoutMs', opts.timeoutMs, 0x7fffffff);
  const spliceAfter = opts.spliceAfter ?? RELAY_SPLICE_AFTER;
  if (!Number.isInteger(spliceAfter) || spliceAfter < -1 || spliceAfter > 0x7fffffff) {
    throw invalid(operation, address, `expected spliceAfter to be an integer from -1 to ${0x7fffffff}, got ${q(spliceAfter)}`);
  }
  const b = nativeRelay('relayConnect');
  try {
    const netns = 'path' in target ? -1 : (target.netns ?? -1);
    return new Relay(b.relayConnect(client.fd, address, port, Math.max(1, opts.timeoutMs), client.initial, client.ended, spliceAfter, onEvent, netns));
  } catch (err) {
    throw nativeError(operation, address, err);
  }
}

/**
 * Close a stream socket abortively (SO_LINGER 0: the peer sees a TCP reset, not an EOF that could pass
 * for a complete reply; a unix socket just closes). Throws PODSOCK_ERR_NATIVE (EBADF).
 */
export function resetFd(fd: number): void {
  checkFd('reset fd', fd);
  const b = nativeRelay('resetFd');
  try {
    b.resetFd(fd);
  } catch (err) {
    throw nativeError('reset fd', String(fd), err);
  }
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
    nativeRelay('acceptStop').acceptStop(this.#handle);
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
  const b = nativeRelay('acceptStart');
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

/** A process started by spawnProcess. */
export interface NativeProcess {
  pid: number;
  /** Send `signal` (a number, os.constants.signals); false once the process has exited. */
  kill(signal: number): boolean;
}

/**
 * Whether spawnProcess works here: the addon has it and the kernel has pidfd_open (Linux 5.3 or later).
 * Callers fall back to child_process otherwise.
 */
export function nativeSpawnAvailable(): boolean {
  try {
    const b = native();
    return typeof b.spawnProcess === 'function' && b.spawnSupported?.() === true;
  } catch {
    return false;
  }
}

/**
 * Start `file` with `argv` (argv[0] included) and exactly `env`, with fd i of the child taken from
 * stdio[i] (-1: /dev/null) and nothing else inherited, every signal at its default and none blocked.
 * vfork (no copy of podsock's page tables) instead of libuv's fork. `onExit`
 * runs once, with the exit status or the terminating signal number (the other one null). A failed
 * exec (ENOENT, EACCES) throws PODSOCK_ERR_NATIVE naming the file and the errno, without onExit.
 * `listenPid`: the child also gets LISTEN_PID=<its own pid> (sd_listen_fds(3)), set before its exec.
 */
export function spawnProcess(
  file: string,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  stdio: readonly number[],
  onExit: (code: number | null, signal: number | null) => void,
  options: { listenPid?: boolean } = {},
): NativeProcess {
  const envp: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) envp.push(`${k}=${v}`);
  for (const fd of stdio) if (fd !== -1) checkFd('spawn', fd);
  const started = call('spawn', file, (b) => {
    if (b.spawnProcess === undefined) throw new Error('the native addon has no spawnProcess (rebuild it)');
    return b.spawnProcess(file, [...argv], envp, [...stdio], (code, signal) => onExit(signal === 0 ? code : null, signal === 0 ? null : signal), options.listenPid === true);
  });
  return nativeProcess(started);
}

/**
 * Watch `pid`, a child this process already has (podman started by podsock-launch before it exec'd
 * Node), like a process spawnProcess started: `onExit` runs once with its status or signal. Throws
 * PODSOCK_ERR_NATIVE (ECHILD when it is not an unreaped child of this process).
 */
export function adoptProcess(pid: number, onExit: (code: number | null, signal: number | null) => void, options: { keepAlive?: boolean } = {}): NativeProcess {
  const started = call('adopt process', String(pid), (b) => {
    if (b.adoptProcess === undefined) throw new Error('the native addon has no adoptProcess (rebuild it)');
    return b.adoptProcess(pid, (code, signal) => onExit(signal === 0 ? code : null, signal === 0 ? null : signal), options.keepAlive !== false);
  });
  return nativeProcess(started);
}

/**
 * Turn PR_SET_CHILD_SUBREAPER (prctl(2)) on or off for this process: while on, processes orphaned below
 * podsock (conmon, which `podman run -d` double-forks) become podsock's children, so that their exit
 * status can be read. Throws PODSOCK_ERR_NATIVE.
 */
export function setChildSubreaper(on: boolean): void {
  call('set child subreaper', String(on), (b) => {
    if (b.setChildSubreaper === undefined) throw new Error('the native addon has no setChildSubreaper (rebuild it)');
    b.setChildSubreaper(on);
  });
}

/** A spawned or adopted process as NativeProcess: signals go through its pidfd (killProcess). */
function nativeProcess(started: { pid: number; handle: ProcessHandle }): NativeProcess {
  const b = native();
  return {
    pid: started.pid,
    kill: (signal) => call('signal process', String(started.pid), () => b.killProcess?.(started.handle, signal) ?? false),
  };
}

/** malloc_trim(0) (malloc_trim(3)): give glibc's free pages back; true when some were. */
export function mallocTrim(): boolean {
  return call('malloc_trim', undefined, (b) => {
    if (b.mallocTrim === undefined) throw new Error('the native addon has no mallocTrim (rebuild it)');
    return b.mallocTrim();
  });
}

/**
 * madvise(MADV_DONTNEED) on `length` bytes from `start`, page-aligned: for a clean, read-only file
 * mapping (memory/file-pages.ts chooses them) the pages stay in the page cache and are mapped again on
 * the next access. Throws PODSOCK_ERR_NATIVE.
 */
export function dropFilePages(start: bigint, length: bigint): void {
  call('drop file pages', `0x${start.toString(16)}`, (b) => {
    if (b.dropFilePages === undefined) throw new Error('the native addon has no dropFilePages (rebuild it)');
    b.dropFilePages(start, length);
  });
}

/**
 * With no relay live, give the pages of the io_uring relay's provided buffers back to the kernel (they
 * are touched in ring order, so a burst of load leaves all of them resident). The bytes given back; 0
 * while relays are live or where there is no ring. Throws PODSOCK_ERR_NATIVE.
 */
export function relayTrim(): number {
  return call('trim relay buffers', undefined, (b) => {
    if (b.relayTrim === undefined) throw new Error('the native addon has no relayTrim (rebuild it)');
    return b.relayTrim();
  });
}

/** The state of the closer's queue (see {@link CloserInfo}). Throws PODSOCK_ERR_NATIVE. */
export function closerInfo(): CloserInfo {
  return call('closer info', undefined, (b) => {
    if (b.closerInfo === undefined) throw new Error('the native addon has no closerInfo (rebuild it)');
    return b.closerInfo();
  });
}

/**
 * The connections of the listening unix sockets `fds` (at most 64), accepted or still in the accept queue,
 * from the kernel's socket table through sock_diag(7) netlink (native/sock-diag.c), each counted once.
 * Unlike /proc/net/unix, whose rows a socket name with a newline can forge, nothing here is text.
 * Throws PODSOCK_ERR_NATIVE: its errno (nativeErrno) is EAFNOSUPPORT or EPROTONOSUPPORT when the kernel
 * has no sock_diag for unix sockets, ESRCH when an fd is not a unix listener of this network namespace.
 */
export function unixConnections(fds: readonly number[]): number {
  for (const fd of fds) checkFd('count unix connections', fd);
  return call('count unix connections', fds.join(','), (b) => {
    if (b.unixConnections === undefined) throw new Error('the native addon has no unixConnections (rebuild it)');
    return b.unixConnections([...fds]);
  });
}

/**
 * Open the network namespace of process `pid` (/proc/PID/ns/net) and read its parent pid, both through
 * one /proc/PID directory fd, so that both describe the same process even if `pid` is reused meanwhile
 * (native/netns.c). The caller owns `fd` (closeFd). Throws PODSOCK_ERR_NATIVE (ENOENT/ESRCH: gone).
 */
export function netnsOpen(pid: number): { fd: number; ppid: number } {
  if (!Number.isInteger(pid) || pid < 1 || pid > 0x7fffffff) throw invalid('open the network namespace of pid', String(pid), 'expected a positive integer pid');
  return call('open the network namespace of pid', String(pid), (b) => {
    if (b.netnsOpen === undefined) throw new Error('the native addon has no netnsOpen (rebuild it)');
    return b.netnsOpen(pid);
  });
}

/**
 * A non-blocking TCP socket (IPv4 or IPv6), not yet connected, created inside the network namespace
 * `nsfd` (from netnsOpen). The caller owns the fd. Needs CAP_SYS_ADMIN (setns(2)); throws
 * PODSOCK_ERR_NATIVE (syscall 'setns' or 'socket').
 */
export function netnsSocket(nsfd: number, family: 4 | 6): number {
  checkFd('create a socket in network namespace fd', nsfd);
  return call('create a socket in network namespace fd', String(nsfd), (b) => {
    if (b.netnsSocket === undefined) throw new Error('the native addon has no netnsSocket (rebuild it)');
    return b.netnsSocket(nsfd, family);
  });
}

/** Whether the loaded addon can create sockets in another network namespace. */
export function hasNetns(): boolean {
  try {
    const b = native();
    return typeof b.netnsOpen === 'function' && typeof b.netnsSocket === 'function';
  } catch {
    return false;
  }
}
