// Helpers shared by the addon's unit tests.
import type { Test } from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPodsockError } from '../../../src/errors.js';
import { nativeErrno } from '../../../src/native/addon.js';

// The system interpreter starts in ~0.1 s; a version-manager shim on PATH can take seconds.
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
/** The addon file as node-gyp builds it. */
export const ADDON = resolve(fileURLToPath(import.meta.url), '../../../../build/Release/podsock_native.node');

/** A temporary directory removed at teardown. */
export function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-native-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A name nobody else on the machine uses (abstract names are per network namespace, not per process). */
export function abstractName(tag: string): string {
  return `@podsock-test-${tag}-${process.pid}-${Math.random().toString(36).slice(2)}`;
}

/** `fn` throws PODSOCK_ERR_NATIVE with `errno` and a message matching `message`. */
export function expectNativeError(t: Test, fn: () => unknown, errno: string, message: RegExp): void {
  try {
    fn();
    t.fail(`expected ${errno}`);
  } catch (err) {
    t.ok(isPodsockError(err, 'PODSOCK_ERR_NATIVE'), 'PODSOCK_ERR_NATIVE');
    t.equal(nativeErrno(err), errno);
    t.match((err as Error).message, message);
  }
}
