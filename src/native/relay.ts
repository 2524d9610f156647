/**
 * The connecting relay (the addon's relay, its connect step and its engines): connect to a backend in C
 * and move the bytes between it and a client fd with recv/send, splice(2) or io_uring, never calling
 * into JS per chunk. It is proxy mode's native data path (proxy/proxy.ts).
 */
import { isIP } from '../ip.js';
import { PodsockError, q } from '../errors.js';
import { binding, call, checkFd, checkInt, invalid, nativeError, type RawError } from './addon.js';
import { checkUnixAddress } from './unix-address.js';

declare const relayHandleBrand: unique symbol;
/** A relay is a number to JS (a slot and its generation in the addon), freed as soon as it finished. */
type RelayHandle = number & { readonly [relayHandleBrand]: true };

/**
 * How relays move bytes: 'io_uring' (Linux 6.1+: one ring per thread, a single system call for many
 * sends and receives) or 'poll' (recv/send per chunk, woken by Node's epoll), which is what every relay
 * uses when the ring cannot be set up.
 */
export type RelayEngineName = 'io_uring' | 'poll';

interface RelayBinding {
  relayAbort(handle: RelayHandle): void;
  relayInfo(handle: RelayHandle): { active: boolean; buffered: number; splicing: boolean; engine: RelayEngineName; idleMs: number };
  relayConnect(
    clientFd: number,
    address: string,
    port: number,
    timeoutMs: number,
    initial: Buffer | null,
    ended: boolean,
    spliceAfter: number,
    onEvent: (err: RawError | null, event: RelayEvent) => void,
    netnsFd: number,
  ): RelayHandle;
  relayCancel(handle: RelayHandle): boolean;
  relayEngine(mode?: 'auto' | 'poll'): { engine: RelayEngineName; reason: RawError | null; waiting: number; live: number; lent: number };
  relayTrim(): number;
}

/** The client side of a relay: its fd and what was read from it before. */
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
 * A running native relay (see relayConnect()). abort() resets both connections now; idempotent, and
 * harmless once the relay finished. `active` is false once both fds are closed; `bufferedBytes` is what
 * the relay holds in user space or in its pipes (at most 64 KiB or 256 KiB per direction).
 */
export class Relay {
  readonly #handle: RelayHandle;

  /** @internal use relayConnect() */
  constructor(handle: RelayHandle) {
    this.#handle = handle;
  }

  get active(): boolean {
    return binding<RelayBinding>().relayInfo(this.#handle).active;
  }

  get bufferedBytes(): number {
    return binding<RelayBinding>().relayInfo(this.#handle).buffered;
  }

  /** Whether either direction has switched to splice(2). */
  get splicing(): boolean {
    return binding<RelayBinding>().relayInfo(this.#handle).splicing;
  }

  /** The engine moving its bytes (see relayEngine()); 'poll' once it finished. */
  get engine(): RelayEngineName {
    return binding<RelayBinding>().relayInfo(this.#handle).engine;
  }

  /**
   * Milliseconds since the relay connected or last moved bytes, saw an EOF or an error, by the event
   * loop's clock; 0 while connecting and once finished.
   */
  get idleMs(): number {
    return binding<RelayBinding>().relayInfo(this.#handle).idleMs;
  }

  abort(): void {
    binding<RelayBinding>().relayAbort(this.#handle);
  }

  /**
   * A relay that is still connecting stops and gives its client fd back to the caller, open and unread,
   * with no further event (true). false once it connected or ended.
   */
  cancel(): boolean {
    return binding<RelayBinding>().relayCancel(this.#handle);
  }
}

/** What relayConnect() reports through its onEvent callback. */
export const RELAY_CONNECTED = 0;
export const RELAY_DONE = 1;
export const RELAY_CONNECT_FAILED = 2;
export type RelayEvent = typeof RELAY_CONNECTED | typeof RELAY_DONE | typeof RELAY_CONNECT_FAILED;

/**
 * A backend relayConnect() can reach without a name lookup: a numeric host and a port, or a unix path.
 * `netns`: an fd from netnsOpen(); the backend socket is created inside that network namespace.
 */
export type ConnectTarget = { host: string; port: number; netns?: number } | { path: string };

export interface RelayConnectOptions extends RelayOptions {
  /** Deadline of the connect in milliseconds (ETIMEDOUT after it). */
  timeoutMs: number;
}

/**
 * Connect to `target` in C and relay between `client.fd` and the new connection in both directions,
 * until both have sent EOF or one fails: `client.initial` goes to the backend first, `client.ended`
 * passes the client's EOF on, EOF from one side becomes shutdown(SHUT_WR) on the other once everything
 * before it was written, an error on either side resets both (SO_LINGER 0), and at most one buffer or
 * pipe is held per direction (reading stops while the other side is not writable). One call per
 * connection; no Node socket, promise or timer exists for the backend connection. `onEvent(err, event)`
 * is called from a later event-loop iteration, except RELAY_CONNECTED when the connect completed at once
 * (usual on loopback), which is called before relayConnect() returns:
 * - RELAY_CONNECTED (err null), at most once: the relay owns the client fd from now on;
 * - RELAY_CONNECT_FAILED: socket(), connect() or the deadline failed (`err.code` 'ECONNREFUSED',
 *   'ENOENT', 'EAGAIN' for a full unix backlog, 'ETIMEDOUT'...); the client fd is the caller's again,
 *   open and unread, so it can retry or close it (resetFd());
 * - RELAY_DONE, after RELAY_CONNECTED, once, after both fds are closed: err null for a clean finish or
 *   an abort(), else an Error whose `code` is the errno name ('ECONNRESET', 'EPIPE'...) and `syscall`
 *   the failing call.
 * The returned Relay's abort() resets both sides in any phase; cancel() gives a connecting client back
 * without further events. A running relay keeps the process alive; none is left once every relay
 * finished. `target.host` must be an IP literal (the caller resolves names). Throws PODSOCK_ERR_NATIVE
 * for invalid arguments, leaving the client fd with the caller.
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
  const b = binding<RelayBinding>();
  try {
    const netns = 'path' in target ? -1 : (target.netns ?? -1);
    return new Relay(b.relayConnect(client.fd, address, port, Math.max(1, opts.timeoutMs), client.initial, client.ended, spliceAfter, onEvent, netns));
  } catch (err) {
    throw nativeError(operation, address, err);
  }
}

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
  const r = binding<RelayBinding>().relayEngine(mode);
  return { engine: r.engine, reason: r.reason === null ? null : r.reason.message, live: r.live, waiting: r.waiting, lent: r.lent };
}

/**
 * With no relay live, give the pages of the io_uring relay's provided buffers back to the kernel (they
 * are touched in ring order, so a burst of load leaves all of them resident). The bytes given back; 0
 * while relays are live or where there is no ring. Throws PODSOCK_ERR_NATIVE.
 */
export function relayTrim(): number {
  return call('trim relay buffers', undefined, (b: RelayBinding) => b.relayTrim());
}
