/**
 * podsock's own sd_notify client: sends datagrams from podsock's process to systemd's NOTIFY_SOCKET, so
 * the kernel attaches podsock's pid (the unit's main pid) and NotifyAccess=main is enough. Follows
 * libsystemd's sd_notify(3) and sd_watchdog_enabled(3); pure apart from the socket: the environment and
 * pid are parameters.
 */
import { PodsockError, q } from '../errors.js';
import { formatNotifyMessage, NOTIFY_MAX_BYTES } from './notify-message.js';
import { nativeErrno } from '../native/addon.js';
import { unixAddressProblem } from '../native/unix-address.js';
import { openDgram, type DgramSocket } from '../native/dgram.js';

/** Sends sd_notify messages to systemd; a no-op when the service has no NOTIFY_SOCKET. */
export interface Notifier {
  /** false when NOTIFY_SOCKET is unset: notify() then does nothing (sd_notify(3) returns 0). */
  readonly enabled: boolean;
  /** The NOTIFY_SOCKET address ('/path' or '@name'), or null when disabled. */
  readonly address: string | null;
  /**
   * Send one message now (synchronously, one datagram). Throws PODSOCK_ERR_NOTIFY for a malformed field
   * or a failed send (ENOENT, ECONNREFUSED, EAGAIN when systemd's queue is full: never blocks), and
   * PODSOCK_ERR_NOTIFY_TOO_LARGE for a message over 4096 bytes (never truncated). After close() it does
   * nothing: by then the process is on its way out.
   */
  notify(fields: Array<[string, string]> | Record<string, string>): void;
  /** Release the socket. Idempotent. */
  close(): void;
}

const EXPECTED = "an absolute path or an abstract socket name starting with '@'";

/**
 * The address in NOTIFY_SOCKET, or null when it is unset. Throws PODSOCK_ERR_NOTIFY for an empty value,
 * a relative path, a 'vsock:' address (libsystemd >= 256 speaks AF_VSOCK; podsock does not) or an
 * address that does not fit a unix socket address.
 */
export function notifySocketAddress(env: NodeJS.ProcessEnv): string | null {
  const value = env.NOTIFY_SOCKET;
  if (value === undefined) return null;
  if (value.startsWith('vsock')) {
    throw new PodsockError('PODSOCK_ERR_NOTIFY', `Unsupported NOTIFY_SOCKET ${q(value)}: vsock addresses are not supported, expected ${EXPECTED}`, {
      details: { NOTIFY_SOCKET: value },
    });
  }
  if (!value.startsWith('/') && !value.startsWith('@')) {
    throw new PodsockError('PODSOCK_ERR_NOTIFY', `Invalid NOTIFY_SOCKET ${q(value)}: expected ${EXPECTED}`, {
      details: { NOTIFY_SOCKET: value },
    });
  }
  const problem = unixAddressProblem(value);
  if (problem !== undefined) {
    throw new PodsockError('PODSOCK_ERR_NOTIFY', `Invalid NOTIFY_SOCKET ${q(value)}: ${problem}`, {
      details: { NOTIFY_SOCKET: value },
    });
  }
  return value;
}

const disabled: Notifier = Object.freeze({
  enabled: false,
  address: null,
  notify(): void {},
  close(): void {},
});

class SocketNotifier implements Notifier {
  readonly enabled = true;
  readonly address: string;
  #socket: DgramSocket | null;

  constructor(address: string) {
    this.address = address;
    this.#socket = openDgram(null);
  }

  notify(fields: Array<[string, string]> | Record<string, string>): void {
    const socket = this.#socket;
    if (socket === null) return;
    const data = Buffer.from(formatNotifyMessage(fields), 'utf8');
    if (data.length > NOTIFY_MAX_BYTES) {
      throw new PodsockError(
        'PODSOCK_ERR_NOTIFY_TOO_LARGE',
        `Notify message of ${data.length} bytes is larger than the ${NOTIFY_MAX_BYTES} bytes systemd accepts`,
        { details: { bytes: data.length, keys: (Array.isArray(fields) ? fields : Object.entries(fields)).map(([k]) => k) } },
      );
    }
    try {
      socket.send(this.address, data);
    } catch (err) {
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Failed to send notify message to NOTIFY_SOCKET ${q(this.address)}: ${(err as Error).message}`, {
        cause: err,
        details: { address: this.address, errno: nativeErrno(err) },
      });
    }
  }

  close(): void {
    this.#socket?.close();
    this.#socket = null;
  }
}

/**
 * Create the notifier for `env` (the environment podsock was started with). No NOTIFY_SOCKET: a disabled
 * notifier whose notify() is a silent no-op, as sd_notify(3). Otherwise it opens an unbound datagram
 * socket once and sends every message through it. Throws PODSOCK_ERR_NOTIFY for a malformed
 * NOTIFY_SOCKET (see notifySocketAddress).
 */
export function createNotifier(env: NodeJS.ProcessEnv): Notifier {
  const address = notifySocketAddress(env);
  return address === null ? disabled : new SocketNotifier(address);
}

/** setTimeout/setInterval cannot wait longer (a larger delay fires after 1 ms, with a warning). */
const TIMER_MAX_MS = 2 ** 31 - 1;
const UINT64_MAX = 2n ** 64n - 1n;

function watchdogError(name: string, value: string, expected: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_NOTIFY', `Invalid ${name} ${q(value)}: expected ${expected}`, {
    details: { [name]: value },
  });
}

/**
 * sd_watchdog_enabled(3) for `env` and `pid`: null when WATCHDOG_USEC is unset or WATCHDOG_PID is set to
 * another pid; otherwise `{ intervalMs }`, the watchdog timeout in milliseconds (podsock pings at half of
 * it). As libsystemd: WATCHDOG_USEC must be a decimal integer other than 0 and UINT64_MAX (infinity), and
 * WATCHDOG_PID, when set, a positive decimal pid; anything else throws PODSOCK_ERR_NOTIFY. The result is
 * at least 1 ms and capped to what a Node timer can wait (about 24.8 days).
 */
export function watchdogFromEnv(env: NodeJS.ProcessEnv, pid: number): { intervalMs: number } | null {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined) return null;
  if (!/^[0-9]{1,20}$/.test(usecText)) {
    throw watchdogError('WATCHDOG_USEC', usecText, 'a positive number of microseconds');
  }
  const usec = BigInt(usecText);
  if (usec === 0n || usec >= UINT64_MAX) {
    throw watchdogError('WATCHDOG_USEC', usecText, 'a positive, finite number of microseconds');
  }
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined) {
    if (!/^[1-9][0-9]{0,9}$/.test(pidText) || Number(pidText) > 2 ** 31 - 1) {
      throw watchdogError('WATCHDOG_PID', pidText, 'a process id');
    }
    if (Number(pidText) !== pid) return null; // "Is this for us?" (sd-daemon.c)
  }
  const ms = usec / 1000n;
  return { intervalMs: ms < 1n ? 1 : ms > BigInt(TIMER_MAX_MS) ? TIMER_MAX_MS : Number(ms) };
}
