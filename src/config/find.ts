/**
 * Where `podsock run NAME` looks for NAME.container, and which names are acceptable.
 *
 * Search order (first regular file wins):
 * 1. $PODSOCK_CONFIG_DIR, when set and not empty (must be an absolute path);
 * 2. /etc/podsock/ for uid 0, otherwise ${XDG_CONFIG_HOME:-$HOME/.config}/podsock/. Following the XDG
 *    base-directory spec, a relative XDG_CONFIG_HOME is ignored; without an absolute HOME there is no
 *    per-user directory.
 *
 * The environment and uid are parameters; only the CLI reads process.env / process.getuid().
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { PodsockError, q } from '../errors.js';

/** Longest service name accepted. */
export const MAX_NAME_LENGTH = 200;

/** Extension of the configuration file, as for Quadlet. */
export const CONFIG_EXTENSION = '.container';

const SAFE_NAME = /^[A-Za-z0-9_.@-]+$/;

/**
 * Throws PodsockError('PODSOCK_ERR_USAGE') unless `name` is 1..MAX_NAME_LENGTH characters of letters,
 * digits, '_', '.', '@' and '-' (so it can never escape the search directory), and is not '.' or '..'.
 */
export function assertSafeName(name: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !SAFE_NAME.test(name) || name === '.' || name === '..') {
    const shown = name.length > 60 ? `${name.slice(0, 57)}...` : name;
    throw new PodsockError(
      'PODSOCK_ERR_USAGE',
      `Invalid service name ${q(shown)}: use 1 to ${MAX_NAME_LENGTH} letters, digits, '_', '.', '@' or '-' (no '/')`,
      { details: { name } },
    );
  }
}

/**
 * The directories searched for NAME.container, in order. Throws PodsockError('PODSOCK_ERR_CONFIG')
 * when PODSOCK_CONFIG_DIR is set to a relative path.
 */
export function configSearchDirs(env: NodeJS.ProcessEnv, uid: number): string[] {
  const dirs: string[] = [];
  const override = env.PODSOCK_CONFIG_DIR;
  if (override !== undefined && override !== '') {
    if (!override.startsWith('/')) {
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG',
        `PODSOCK_CONFIG_DIR must be an absolute path, got ${q(override)}`,
        { details: { variable: 'PODSOCK_CONFIG_DIR', value: override } },
      );
    }
    dirs.push(override);
  }
  if (uid === 0) {
    dirs.push('/etc/podsock');
  } else {
    const xdg = env.XDG_CONFIG_HOME;
    const home = env.HOME;
    if (xdg !== undefined && xdg.startsWith('/')) dirs.push(join(xdg, 'podsock'));
    else if (home !== undefined && home.startsWith('/')) dirs.push(join(home, '.config', 'podsock'));
  }
  return dirs;
}

/** The candidate paths for `name`, in search order (see configSearchDirs()). */
export function configCandidates(name: string, env: NodeJS.ProcessEnv, uid: number): string[] {
  assertSafeName(name);
  return configSearchDirs(env, uid).map((dir) => join(dir, name + CONFIG_EXTENSION));
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    // Missing, unreadable directory or dangling symlink: not a candidate; the caller lists where it looked.
    return false;
  }
}

/**
 * The first existing NAME.container in the search order, or null. Throws PodsockError
 * ('PODSOCK_ERR_USAGE') for an unsafe name and ('PODSOCK_ERR_CONFIG') for a relative
 * PODSOCK_CONFIG_DIR.
 */
export function findConfigFile(name: string, env: NodeJS.ProcessEnv, uid: number): string | null {
  for (const path of configCandidates(name, env, uid)) {
    if (isRegularFile(path)) return path;
  }
  return null;
}
