/**
 * The addon core: loads native/podsock_native.c's module once, checks that it is the interface this
 * code was written for, and turns what the addon throws into PodsockError('PODSOCK_ERR_NATIVE') naming
 * the operation, the address and the errno name. Every other file of src/native/ wraps the functions of
 * one C file (fds, datagram sockets, relay, acceptor, spawn, memory, closer, sock_diag, netns, record locks) and
 * declares only those functions' types.
 *
 * Why an addon at all: core Node cannot open unix datagram sockets (dgram knows only udp4/udp6, and
 * net.connect() to a datagram path fails with EPROTOTYPE), cannot receive SCM_CREDENTIALS (unix(7)),
 * and cannot duplicate or inspect a raw fd.
 */
import { fileURLToPath } from 'node:url';
import { PodsockError, q } from '../errors.js';

/**
 * The interface version this code expects of the addon (its `abiVersion` export). The addon ships in
 * the same package, so a mismatch means a stale build, found at load instead of at the first call.
 */
export const ABI_VERSION = 3;

/** What the addon throws: an Error with the errno name on `code` and the failing call on `syscall`. */
export interface RawError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
}

// src/native/addon.ts (tests run the .ts), dist/native/addon.js and the bundle dist/bin/podsock.cjs all
// sit two levels below the package root.
const ADDON_PATH = '../../build/Release/podsock_native.node';
let loaded: { abiVersion?: unknown } | undefined;

const REBUILD = "rebuild it with 'npm rebuild podsock' or 'npx node-gyp rebuild'";

/**
 * The addon's exports, loaded on first use (so importing a module of src/native/ never fails by
 * itself), typed as the caller's part of them. Throws PODSOCK_ERR_NATIVE when the addon cannot be
 * loaded or has another interface version.
 */
export function binding<T>(): T {
  if (loaded === undefined) {
    const m = { exports: {} as { abiVersion?: unknown } };
    try {
      // process.dlopen with the absolute path: require() would first search for the file and look for a
      // package.json self-reference, a millisecond of podsock's start-up for a path that is fixed.
      process.dlopen(m, fileURLToPath(new URL(ADDON_PATH, import.meta.url)));
    } catch (err) {
      throw new PodsockError('PODSOCK_ERR_NATIVE', `Failed to load the native addon ${q(ADDON_PATH)}: ${(err as Error).message} (${REBUILD})`, {
        cause: err,
        details: { operation: 'load addon' },
      });
    }
    checkAbiVersion(m.exports.abiVersion);
    loaded = m.exports;
  }
  return loaded as T;
}

/**
 * Throw PODSOCK_ERR_NATIVE unless `found`, the loaded addon's `abiVersion` export, is ABI_VERSION: the
 * message names both versions and how to rebuild.
 */
export function checkAbiVersion(found: unknown): void {
  if (found === ABI_VERSION) return;
  const was = typeof found === 'number' ? `version ${found}` : 'no version (built before versions existed)';
  throw new PodsockError('PODSOCK_ERR_NATIVE', `The native addon ${q(ADDON_PATH)} has interface ${was}, this podsock needs version ${ABI_VERSION}: ${REBUILD}`, {
    details: { operation: 'load addon', found: typeof found === 'number' ? found : null, expected: ABI_VERSION },
  });
}

/** Whether the addon loads here (and has this code's interface version). */
export function addonAvailable(): boolean {
  try {
    binding();
    return true;
  } catch {
    return false;
  }
}

/** Turn what the addon threw into a PodsockError naming the operation, the address and the errno. */
export function nativeError(operation: string, address: string | undefined, err: unknown): PodsockError {
  const raw = err as RawError;
  const where = address === undefined ? '' : ` ${q(address)}`;
  return new PodsockError('PODSOCK_ERR_NATIVE', `Failed to ${operation}${where}: ${raw.message}`, {
    cause: err,
    details: { operation, address, errno: raw.code, syscall: raw.syscall },
  });
}

/** An argument refused before it reached C: PODSOCK_ERR_NATIVE with errno EINVAL and the reason. */
export function invalid(operation: string, address: string | undefined, reason: string): PodsockError {
  const where = address === undefined ? '' : ` ${q(address)}`;
  return new PodsockError('PODSOCK_ERR_NATIVE', `Failed to ${operation}${where}: ${reason}`, {
    details: { operation, address, errno: 'EINVAL' },
  });
}

/** Run `fn` with the addon's exports (typed as T), wrapping what it throws with nativeError(). */
export function call<T, R>(operation: string, address: string | undefined, fn: (b: T) => R): R {
  const b = binding<T>();
  try {
    return fn(b);
  } catch (err) {
    throw nativeError(operation, address, err);
  }
}

/** Refuse anything but an fd number (0 to 2^31-1) before it reaches C. */
export function checkFd(operation: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw invalid(operation, String(fd), 'expected a non-negative integer file descriptor');
  }
}

/** Refuse anything but an integer from 0 to `max` for the argument `name`. */
export function checkInt(operation: string, address: string, name: string, value: number, max: number): void {
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
