/**
 * The two notify sockets of one activation. The container's (NOTIFY_SOCKET inside it, bind-mounted):
 * its messages go to the relay. podman's own (--sdnotify=conmon), in a 0700 directory of its own that
 * the container never sees: its READY=1 says that the container runs. Either is new, or taken over from
 * podsock-launch, which made both before podsock started (runtime/prestart.ts).
 */
import type { Logger } from '../log.js';
import { q } from '../errors.js';
import { NotifyServer, type NotifyMessage } from '../sd/notify-server.js';
import { sweepNotifyDirs } from '../sd/notify-sweep.js';

export interface NotifySockets {
  container: NotifyServer;
  podman: NotifyServer;
}

export interface NotifySocketsOptions {
  /** Where their private directories are made. */
  parentDir: string;
  /** podsock-launch's sockets, container's first (PODSOCK_PRESTART's order), or null for new ones. */
  adopt: ReadonlyArray<{ fd: number; dir: string }> | null;
  onContainerMessage: (msg: NotifyMessage) => void;
  /** podman said READY=1: the container runs. */
  onPodmanReady: () => void;
  log: Logger;
}

/** Both sockets, or neither: the first is closed when the second cannot be made. */
export async function openNotifySockets(o: NotifySocketsOptions): Promise<NotifySockets> {
  const { log } = o;
  const container = await NotifyServer.create({
    parentDir: o.parentDir,
    ...(o.adopt !== null ? { adopt: o.adopt[0] as { fd: number; dir: string } } : {}),
    onMessage: o.onContainerMessage,
    onDrop: (d) => log.debug({ pid: d.pid }, `Dropped a ${d.reason} notify datagram from the container: ${d.detail}, ignoring`),
    onError: (err) => log.warn({ err }, 'Container notify socket failed, ignoring'),
  });
  try {
    const podman = await NotifyServer.create({
      parentDir: o.parentDir,
      ...(o.adopt !== null ? { adopt: o.adopt[1] as { fd: number; dir: string } } : {}),
      onMessage: (msg) => {
        if (msg.fields.some(([k, v]) => k === 'READY' && v === '1')) o.onPodmanReady();
      },
      onError: (err) => log.warn({ err }, 'podman notify socket failed, ignoring'),
    });
    return { container, podman };
  } catch (err) {
    container.close();
    throw err;
  }
}

/** Close both (each close is idempotent). */
export function closeNotifySockets(s: NotifySockets | null): void {
  s?.container.close();
  s?.podman.close();
}

let swept = false;
/** How long after ready the sweep waits: the request that started the service goes first. */
export const SWEEP_DELAY_MS = 2000;

/**
 * Once per process, a moment after the service is ready (off the cold start and the first request):
 * remove the notify directories that podsock processes killed outright left in the runtime directory
 * (sd/notify-sweep.ts). Logged, never fatal; the timer does not keep podsock alive.
 */
export function sweepLeftoverNotifyDirs(parentDir: string, own: NotifySockets, log: Logger): void {
  if (swept) return;
  swept = true;
  const sweep = (): void => {
    try {
      const { removed, failed } = sweepNotifyDirs(parentDir, { keep: [own.container.dir, own.podman.dir] });
      if (removed.length > 0) log.info({ removed }, `Removed ${removed.length} notify director${removed.length === 1 ? 'y' : 'ies'} left by podsock processes that were killed`);
      for (const f of failed) log.warn(`Cannot remove the leftover notify directory ${q(f.dir)}: ${f.error}, ignoring`);
    } catch (err) {
      log.warn({ err }, 'Cannot sweep leftover notify directories, ignoring');
    }
  };
  setTimeout(sweep, SWEEP_DELAY_MS).unref();
}
