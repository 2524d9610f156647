/**
 * The listening sockets a service serves: the ones systemd passed (LISTEN_FDS, sd_listen_fds(3)), or,
 * standalone (`--listen ADDR`), sockets podsock binds itself. Standalone unix socket files are
 * podsock's own: a stale one left by an earlier run is replaced, and removeStaleSocket() removes them
 * at exit; systemd's sockets are never touched.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { PodsockError, q } from '../errors.js';
import { listenFdsWithNames, type ListenFd } from '../sd/listen-fds.js';
import { inspectFd, listenSocket } from '../native/fds.js';
import { parseListenAddress } from './listen-address.js';

/** The sockets to serve; `owned` are the fds podsock opened itself (standalone), to close at exit. */
export interface Listeners {
  listeners: ListenFd[];
  standalone: boolean;
  owned: number[];
}

/**
 * Binds every `--listen` address when there are any (standalone), else adopts the sockets systemd
 * passed to process `pid`. Throws PodsockError: 'PODSOCK_ERR_USAGE' for a bad address,
 * 'PODSOCK_ERR_LISTEN' when one cannot be bound, 'PODSOCK_ERR_NO_SOCKETS' when there is nothing to serve.
 */
export function adoptOrBind(env: NodeJS.ProcessEnv, pid: number, listen: readonly string[]): Listeners {
  if (listen.length > 0) {
    const listeners: ListenFd[] = [];
    const owned: number[] = [];
    for (const raw of listen) {
      const spec = parseListenAddress(raw);
      let fd: number;
      // A socket file left by an earlier standalone run is ours to replace (anything else is not).
      if (spec.kind === 'unix' && !spec.path.startsWith('@')) removeStaleSocket(spec.path);
      try {
        fd = listenSocket(
          spec.kind === 'tcp'
            ? { kind: 'tcp', host: spec.host, port: spec.port, backlog: spec.backlog }
            : spec.kind === 'udp'
              ? { kind: 'udp', host: spec.host, port: spec.port }
              : { kind: 'unix', path: spec.path, backlog: spec.backlog },
        );
      } catch (err) {
        throw new PodsockError('PODSOCK_ERR_LISTEN', `Cannot listen on ${q(raw)}: ${(err as Error).message}`, { cause: err });
      }
      owned.push(fd);
      listeners.push({ ...inspectFd(fd), fd, name: spec.name });
    }
    return { listeners, standalone: true, owned };
  }
  const { fds, reason } = listenFdsWithNames(env, pid, inspectFd);
  if (fds.length === 0) {
    throw new PodsockError(
      'PODSOCK_ERR_NO_SOCKETS',
      `No sockets to serve (${reason ?? 'none passed'}). podsock is meant to be started by a systemd socket unit ` +
        `(ExecStart=podsock run NAME in the service that NAME.socket activates), or standalone with --listen ADDR, e.g. 'podsock run NAME --listen 127.0.0.1:8080'`,
    );
  }
  return { listeners: fds, standalone: false, owned: [] };
}

/** Removes the unix socket file at `path` if there is one; anything else there is left alone. */
export function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Not there: nothing to remove.
  }
}
