/**
 * The container's NOTIFY_SOCKET: a unix datagram socket in a fresh private directory that the container
 * gets bind-mounted, receiving sd_notify messages with the sender's credentials. Everything arriving here
 * is peer-controlled, so it is bounded: datagrams over 4096 bytes (or with cut-off control data) are
 * dropped, malformed ones are dropped, fds passed along are closed at once (which answers BARRIER=1) on a
 * helper thread, so that a close that blocks never stops the event loop (native/closer.c), and
 * a token bucket caps how many messages per second reach the caller. Drops are counted, never logged here.
 * Model: podman's pkg/systemd/notifyproxy (drop truncated datagrams, close BARRIER fds).
 */
// Synchronous on purpose: this runs right before `podman run` is spawned, and a cold start should not
// load fs/promises or wait a turn of the thread pool for two tiny system calls.
import { chmodSync, mkdtempSync, rmdirSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PodsockError, q } from '../errors.js';
import { unixAddressProblem } from '../native/unix-address.js';
import { adoptDgram, openDgram, type DgramSocket, type ReceivedDatagram } from '../native/dgram.js';
import { parseNotifyMessage } from './notify-message.js';

/** One accepted message from the container, attributed by SCM_CREDENTIALS (pids in podsock's namespace). */
export interface NotifyMessage {
  pid: number;
  uid: number;
  gid: number;
  fields: Array<[string, string]>;
  /** fds that came with the datagram (already handed to the closer thread); 1 with BARRIER=1. */
  fdCount: number;
}

/** Counters since create(). received = delivered + every dropped* counter. */
export interface NotifyServerStats {
  received: number;
  delivered: number;
  droppedTruncated: number;
  droppedMalformed: number;
  droppedRate: number;
  fdsClosed: number;
}

/** Why a datagram was not delivered (rate drops are only counted: they come in floods). */
export interface NotifyDrop {
  reason: 'truncated' | 'malformed';
  pid: number;
  detail: string;
}

export interface NotifyServerOptions {
  /** Directory in which the private 'podsock-XXXXXX' directory is created; must exist. */
  parentDir: string;
  /** Messages per second delivered on average (default 200). */
  maxPerSecond?: number;
  /** Messages delivered back to back before the rate applies (default 2 × maxPerSecond). */
  burst?: number;
  /** Called for every accepted message, synchronously, in arrival order. */
  onMessage: (msg: NotifyMessage) => void;
  /** Called for each truncated or malformed datagram, e.g. to log it (", ignoring"). */
  onDrop?: (drop: NotifyDrop) => void;
  /** Called when receiving fails (the server stops receiving) or the directory cannot be removed on close. */
  onError?: (err: PodsockError) => void;
  /**
   * A directory and bound socket podsock-launch made before Node started (runtime/prestart.ts): take
   * them over instead of creating new ones. The directory must be a `podsock-XXXXXX` child of parentDir.
   */
  adopt?: { fd: number; dir: string };
}

/** The socket's file name inside the private directory. */
export const NOTIFY_SOCKET_NAME = 'notify.sock';
/** mkdtemp's random suffix is six characters. */
const MKDTEMP_PREFIX = 'podsock-';
const MKDTEMP_SUFFIX = 'XXXXXX';
const DEFAULT_MAX_PER_SECOND = 200;

/**
 * A token bucket: `take()` succeeds at most `burst` times back to back and `ratePerSecond` times per
 * second on average. `now` is a monotonic clock in milliseconds (injectable for tests).
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  // A monotonic clock without the global `performance` (whose first use loads perf_hooks at start-up).
  constructor(ratePerSecond: number, burst: number, now: () => number = () => Number(process.hrtime.bigint()) / 1e6) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  take(): boolean {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Remove the names podsock created in a notify directory: `notify.sock` (unlink(2) removes a name, never
 * what a symbolic link there points to) and then the directory itself (rmdir(2) removes only an empty
 * directory). Never recursive: the directory is shared with the container, so nothing else found there
 * is podsock's to remove by path. A missing name is fine; anything else throws.
 */
export function removeOwnNames(dir: string): void {
  for (const remove of [() => unlinkSync(join(dir, NOTIFY_SOCKET_NAME)), () => rmdirSync(dir)]) {
    try {
      remove();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function checkPositive(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1) {
    throw new PodsockError(
      'PODSOCK_ERR_INTERNAL',
      `Expected the \`${name}\` option to be a number of at least 1, got \`${String(value)}\` (${typeof value})`,
    );
  }
}

/**
 * Receives the container's sd_notify messages. Create with `await NotifyServer.create(options)`: it makes
 * a private directory `<parentDir>/podsock-XXXXXX` (mode 0700, random name), binds `notify.sock` in it
 * with SO_PASSCRED, makes the socket mode 0777 (the container may run as another uid; conmon does the
 * same for its socket) and starts receiving. Give the container the directory (`dir`) as a bind mount and
 * NOTIFY_SOCKET=<mount point>/<socketName> (read-only: runtime/podman-argv.ts). close() is idempotent:
 * it closes the socket and removes the socket file and the then empty directory, nothing else.
 */
export class NotifyServer {
  /** The private directory holding the socket. */
  readonly dir: string;
  /** The socket's absolute path on this host. */
  readonly socketPath: string;
  /** The socket's file name inside `dir`. */
  readonly socketName = NOTIFY_SOCKET_NAME;
  readonly #socket: DgramSocket;
  readonly #options: NotifyServerOptions;
  readonly #bucket: TokenBucket;
  readonly #stats: NotifyServerStats = {
    received: 0,
    delivered: 0,
    droppedTruncated: 0,
    droppedMalformed: 0,
    droppedRate: 0,
    fdsClosed: 0,
  };
  #closed = false;

  private constructor(dir: string, socket: DgramSocket, options: NotifyServerOptions) {
    this.dir = dir;
    this.socketPath = join(dir, NOTIFY_SOCKET_NAME);
    this.#socket = socket;
    this.#options = options;
    const rate = options.maxPerSecond ?? DEFAULT_MAX_PER_SECOND;
    this.#bucket = new TokenBucket(rate, options.burst ?? 2 * rate);
  }

  /**
   * Create, bind and start receiving (see the class contract). Throws PODSOCK_ERR_NOTIFY when the socket
   * path would not fit a unix socket address (checked before anything is created: choose a shorter
   * parentDir) or the directory cannot be created, PODSOCK_ERR_NATIVE when binding fails. Nothing is left
   * behind on failure.
   */
  static async create(options: NotifyServerOptions): Promise<NotifyServer> {
    if (options.maxPerSecond !== undefined) checkPositive('maxPerSecond', options.maxPerSecond);
    if (options.burst !== undefined) checkPositive('burst', options.burst);
    const parentDir = resolve(options.parentDir);
    const predicted = join(parentDir, MKDTEMP_PREFIX + MKDTEMP_SUFFIX, NOTIFY_SOCKET_NAME);
    const problem = unixAddressProblem(predicted);
    if (problem !== undefined) {
      throw new PodsockError(
        'PODSOCK_ERR_NOTIFY',
        `Cannot create the notify socket in ${q(parentDir)}: ${problem} (${q(predicted)}); use a shorter runtime directory`,
        { details: { parentDir } },
      );
    }
    if (options.adopt !== undefined) return NotifyServer.#adopt(parentDir, options.adopt, options);
    let dir: string;
    try {
      dir = mkdtempSync(join(parentDir, MKDTEMP_PREFIX));
    } catch (err) {
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Failed to create the notify socket directory in ${q(parentDir)}: ${(err as Error).message}`, {
        cause: err,
        details: { parentDir },
      });
    }
    let socket: DgramSocket | null = null;
    try {
      chmodSync(dir, 0o700); // mkdtemp's 0700 is subject to the umask; be explicit
      socket = openDgram(join(dir, NOTIFY_SOCKET_NAME));
      chmodSync(join(dir, NOTIFY_SOCKET_NAME), 0o777);
      return NotifyServer.#receiving(dir, socket, options);
    } catch (err) {
      socket?.close();
      try {
        removeOwnNames(dir);
      } catch {
        // Reported below: the set-up failed, which is what matters.
      }
      if (err instanceof PodsockError) throw err;
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Failed to set up the notify socket in ${q(dir)}: ${(err as Error).message}`, {
        cause: err,
        details: { dir },
      });
    }
  }

  /** The server for a bound socket in `dir`, receiving. */
  static #receiving(dir: string, socket: DgramSocket, options: NotifyServerOptions): NotifyServer {
    const server = new NotifyServer(dir, socket, options);
    socket.startReceiving(
      (batch) => server.#onBatch(batch),
      (err) => server.#options.onError?.(err),
    );
    return server;
  }

  static #adopt(parentDir: string, adopt: { fd: number; dir: string }, options: NotifyServerOptions): NotifyServer {
    const name = basename(adopt.dir);
    if (dirname(adopt.dir) !== parentDir || !name.startsWith(MKDTEMP_PREFIX) || name.length !== MKDTEMP_PREFIX.length + MKDTEMP_SUFFIX.length) {
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Cannot adopt notify directory ${q(adopt.dir)}: expected a ${MKDTEMP_PREFIX}${MKDTEMP_SUFFIX} directory in ${q(parentDir)}`);
    }
    let socket: DgramSocket | null = null;
    try {
      socket = adoptDgram(adopt.fd, join(adopt.dir, NOTIFY_SOCKET_NAME));
      return NotifyServer.#receiving(adopt.dir, socket, options);
    } catch (err) {
      socket?.close();
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Cannot adopt the notify socket in ${q(adopt.dir)}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A copy of the counters. */
  get stats(): NotifyServerStats {
    return { ...this.#stats };
  }

  /** Let the open socket keep the process alive (the default). */
  ref(): this {
    this.#socket.ref();
    return this;
  }

  /** Do not keep the process alive just for this socket. */
  unref(): this {
    this.#socket.unref();
    return this;
  }

  /**
   * Close the socket and remove what podsock created, by name: the socket file, then the directory if it
   * is empty. Anything else found there is left as it is and reported to onError. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    try {
      removeOwnNames(this.dir);
    } catch (err) {
      this.#options.onError?.(
        new PodsockError('PODSOCK_ERR_NOTIFY', `Failed to remove the notify socket directory ${q(this.dir)}: ${(err as Error).message}`, {
          cause: err,
          details: { dir: this.dir },
        }),
      );
    }
  }

  #onBatch(batch: ReceivedDatagram[]): void {
    const stats = this.#stats;
    for (const d of batch) {
      if (this.#closed) return;
      stats.received++;
      stats.fdsClosed += d.fdCount;
      if (d.truncated) {
        stats.droppedTruncated++;
        this.#options.onDrop?.({ reason: 'truncated', pid: d.pid, detail: `datagram larger than 4096 bytes (or its control data was cut off)` });
        continue;
      }
      // Rate before parsing: under a flood the cheap check runs first.
      if (!this.#bucket.take()) {
        stats.droppedRate++;
        continue;
      }
      if (d.pid <= 0) {
        // systemd ignores messages "lacking valid credential information" (SO_PASSCRED makes this rare).
        stats.droppedMalformed++;
        this.#options.onDrop?.({ reason: 'malformed', pid: d.pid, detail: 'no sender credentials' });
        continue;
      }
      const parsed = parseNotifyMessage(d.data);
      if (!parsed.ok) {
        stats.droppedMalformed++;
        this.#options.onDrop?.({ reason: 'malformed', pid: d.pid, detail: parsed.reason });
        continue;
      }
      stats.delivered++;
      this.#options.onMessage({ pid: d.pid, uid: d.uid, gid: d.gid, fields: parsed.fields, fdCount: d.fdCount });
    }
  }
}
