/**
 * Where podsock keeps its private directories. The runtime directory (the cidfile, the notify
 * sockets) lives as long as one activation; the state directory (start failures, the plan for
 * podsock-launch) outlives it. Both are made private by private-files.ts (RUNTIME_DIR_LEVELS and
 * STATE_DIR_LEVELS are how far below a directory podsock does not own they are). Pure.
 */
import { join } from 'node:path';

/** podsock's per-user state that outlives one activation (unlike RuntimeDirectory=, removed at stop). */
export function stateDirFor(env: NodeJS.ProcessEnv, uid: number): string {
  if (uid === 0) return '/run/podsock/state';
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'podsock', 'state');
  return `/tmp/podsock-${uid}/state`;
}

/** podsock's private runtime directory: RuntimeDirectory= if given (systemd.exec(5)), else per user. */
export function runtimeDirFor(env: NodeJS.ProcessEnv, uid: number): string {
  const fromUnit = env.RUNTIME_DIRECTORY?.split(':')[0];
  if (fromUnit !== undefined && fromUnit !== '') return fromUnit;
  if (uid === 0) return '/run/podsock';
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'podsock');
  return `/tmp/podsock-${uid}`;
}
