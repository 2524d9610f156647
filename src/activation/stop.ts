/**
 * Stopping an activation's container: `podman stop` (by cid, else by name), then a bounded wait for
 * what watches the container: the `podman run` child while it runs, then (detached) the container's
 * conmon. Whatever does not end in time is killed, and the container removed by name.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import { q } from '../errors.js';
import { stopContainer, type Podman, type RunningContainer } from '../runtime/podman.js';

/** How long `podman run` (or conmon) may take to end after `podman stop` returned. */
const REAP_MS = 5000;

export interface StopTarget {
  podman: Podman;
  cfg: ServiceConfig;
  log: Logger;
  run: RunningContainer;
  /** The container's id once the cidfile was read, else null (stopped by name). */
  cid: string | null;
}

/** Stop the container and wait until what watched it is gone; `why` goes to the debug log. */
export async function stopAndReap(t: StopTarget, why: string): Promise<void> {
  const { podman, cfg, log, run } = t;
  log.debug({ why }, `Stopping container ${q(cfg.containerName)}`);
  try {
    await stopContainer(podman, { cid: t.cid, name: cfg.containerName }, cfg.stopTimeoutMs / 1000);
  } catch (err) {
    log.warn({ err }, 'podman stop failed, killing podman run (or conmon)');
  }
  const wait = new AbortController();
  const gone = await Promise.race([
    run.exited.then(() => true),
    sleep(REAP_MS, false, { ref: false, signal: wait.signal }).catch(() => false),
  ]);
  wait.abort();
  if (!gone) {
    run.kill('SIGKILL');
    await run.exited;
    // podman run (or conmon) died while the container may have been created in that instant: remove it by name.
    await stopContainer(podman, { cid: null, name: cfg.containerName }, 0).catch(() => undefined);
  }
}
