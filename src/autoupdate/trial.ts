/**
 * One trial start of a service's container from a given image, the way `podsock run` starts it
 * (supervisor.ts, one activation: the same podman options, Ready=, StartTimeout=), on sockets of its
 * own instead of the service's: loopback TCP sockets on ports the kernel picks, one per backend in
 * proxy mode (named as the backends are) and one in handover mode. The container is named
 * `CONTAINER-update`, so it never meets the service's own container, and carries no
 * io.containers.autoupdate label (podman refuses that label on an image given by id, and the trial
 * is nobody's to update). It is stopped and removed as soon as it is ready, and on every failure.
 * It also carries `--timeout` (podman-run(1): conmon kills the container when it expires, and `--rm`
 * removes it) of StartTimeout + StopTimeout + TRIAL_SLACK_S: a trial whose `podsock auto-update` was
 * killed (SIGKILL, no handler runs) ends by itself instead of running on beside the service. Placed
 * after the service's own options, it is the one podman takes.
 *
 * An app that needs its socket on a particular address (nginx's `listen` must match a handed-over
 * socket) fails here; such a service is better updated while it runs, by `podman auto-update`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceConfig } from '../config/load.js';
import { PodsockError } from '../errors.js';
import type { Frontend } from '../frontend.js';
import { HandoverFrontend } from '../idle/handover-frontend.js';
import { handoverPollMs } from '../idle/handover-poll.js';
import type { Logger } from '../log.js';
import { closeFd, inspectFd, listenSocket } from '../native/fds.js';
import type { ListenFd } from '../sd/listen-fds.js';
import type { Podman } from '../runtime/podman.js';
import { Supervisor } from '../supervisor.js';

/** How a trial ended: ready (and stopped again), or the reason it was not. */
export type TrialResult = { ok: true; readyMs: number } | { ok: false; message: string };

export interface TrialOptions {
  cfg: ServiceConfig;
  /** The image to start, by id. */
  imageId: string;
  podman: Podman;
  log: Logger;
  /** The private directory in which the trial's runtime directory is made (trialRuntimeDir). */
  runtimeParent: string;
  /** Whether podsock runs rootless (published ports instead of the container's namespace). */
  rootless: boolean;
  /** Builds the proxy-mode frontend as `podsock run` does (cli/run.ts). */
  proxyFrontend: (cfg: ServiceConfig, listeners: ListenFd[], log: Logger) => Promise<Frontend>;
  /** Loopback ports for the backends when podsock cannot reach them inside the container (rootless). */
  freePort: () => number;
  directBackend: boolean;
  /** Aborted (SIGINT, SIGTERM): the trial container is stopped at once and the trial fails. */
  signal?: AbortSignal;
}

/** The options of `cfg` without the io.containers.autoupdate label (as `--label X` or `--label=X`). */
export function withoutAutoUpdateLabel(options: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const o = options[i] as string;
    if (o === '--label' && (options[i + 1] ?? '').startsWith('io.containers.autoupdate=')) {
      i++;
      continue;
    }
    if (o.startsWith('--label=io.containers.autoupdate=')) continue;
    out.push(o);
  }
  return out;
}

/** Seconds a trial container may run beyond StartTimeout + StopTimeout before conmon kills it. */
export const TRIAL_SLACK_S = 10;

/** The trial container's `--timeout`, in seconds (see the module comment). */
export function trialTimeoutSeconds(cfg: Pick<ServiceConfig, 'startTimeoutMs' | 'stopTimeoutMs'>): number {
  return Math.ceil((cfg.startTimeoutMs + cfg.stopTimeoutMs) / 1000) + TRIAL_SLACK_S;
}

/** The configuration of the trial container: the service's, with the image, name and label changed, and a time limit. */
export function trialConfig(cfg: ServiceConfig, imageId: string): ServiceConfig {
  return Object.freeze({
    ...cfg,
    image: imageId,
    containerName: `${cfg.containerName}-update`,
    podmanOptions: [...withoutAutoUpdateLabel(cfg.podmanOptions), `--timeout=${trialTimeoutSeconds(cfg)}`],
    idleTimeoutMs: null,
  });
}

/**
 * The trial's runtime directory (its notify sockets, failure file), one per service and removed after
 * the trial: `update-HASH` (HASH: SHA-256 of the service's name, short enough for a unix socket path
 * below it). Its name is fixed so that what a killed run left is found and removed by the next trial;
 * no other run uses it meanwhile, because a trial runs only under the service's update lock (lock.ts).
 */
export function trialRuntimeDir(runtimeParent: string, service: string): string {
  return join(runtimeParent, `update-${createHash('sha256').update(service).digest('hex').slice(0, 16)}`);
}

/** Start the image once and wait for readiness within StartTimeout (see the module comment). Never throws for the container's failures. */
export async function tryImage(o: TrialOptions): Promise<TrialResult> {
  const owned: number[] = [];
  const dir = trialRuntimeDir(o.runtimeParent, o.cfg.name);
  rmSync(dir, { recursive: true, force: true }); // a killed run's (see trialRuntimeDir)
  mkdirSync(dir, { mode: 0o700 });
  const cfg = trialConfig(o.cfg, o.imageId);
  let frontend: Frontend | null = null;
  try {
    // One loopback socket per backend (proxy) or one (handover), on a port the kernel picks.
    const names = cfg.mode === 'proxy' ? cfg.backends.map((b) => b.name ?? 'trial') : ['trial'];
    const listeners: ListenFd[] = names.map((name) => {
      const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
      owned.push(fd);
      return { ...inspectFd(fd), fd, name };
    });
    frontend =
      cfg.mode === 'proxy'
        ? await o.proxyFrontend(cfg, listeners, o.log)
        : new HandoverFrontend({ listeners, pollMs: handoverPollMs(cfg.idleTimeoutMs) });
    let readyAt: number | null = null;
    let failure = '';
    const started = Date.now();
    let supervisor: Supervisor | null = null;
    supervisor = new Supervisor({
      cfg,
      log: o.log,
      systemd: {
        notify: (fields) => {
          for (const [k, v] of Array.isArray(fields) ? fields : Object.entries(fields)) {
            if (k === 'READY' && v === '1' && readyAt === null) {
              readyAt = Date.now();
              supervisor?.requestStop('the trial start is over');
            }
            if (k === 'STATUS' && v.startsWith('Failed: ')) failure = v.slice('Failed: '.length);
          }
        },
      },
      podman: o.podman,
      runtimeDir: join(dir, 'run'),
      listeners,
      frontend,
      standalone: false,
      unit: null,
      watchdog: null,
      backendHostPorts: o.directBackend ? [] : cfg.backends.map(() => o.freePort()),
      directBackend: o.directBackend,
      selinux: existsSync('/sys/fs/selinux/enforce'),
      rootless: o.rootless,
      failureFile: join(dir, 'failures'),
    });
    const onAbort = (): void => void supervisor?.requestStop('interrupted');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.signal?.aborted === true) onAbort();
    const code = await supervisor.run().finally(() => o.signal?.removeEventListener('abort', onAbort));
    if (o.signal?.aborted === true) return { ok: false, message: 'interrupted' };
    if (readyAt !== null) return { ok: true, readyMs: (readyAt as number) - started };
    return { ok: false, message: failure || `the trial start ended with status ${code} before the container was ready` };
  } catch (err) {
    return { ok: false, message: err instanceof PodsockError || err instanceof Error ? err.message : String(err) };
  } finally {
    await frontend?.close();
    for (const fd of owned) closeFd(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
