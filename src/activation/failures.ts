/**
 * The errors an activation ends with, worded for a person: the container was not ready in time, exited
 * before it was ready (podman's own failures told apart), or failed while serving.
 */
import type { ServiceConfig } from '../config/load.js';
import { formatTimespan } from '../config/timespan.js';
import { PodsockError, q } from '../errors.js';
import { imageExists, stopContainer, type ExitInfo, type Podman } from '../runtime/podman.js';

/** "code 3", "signal SIGKILL", or why neither is known. */
export function exitText(info: ExitInfo): string {
  if (info.code !== null) return `code ${info.code}`;
  if (info.signal !== null) return `signal ${info.signal}`;
  return `an unknown status (${info.lost ?? 'no status reported'})`;
}

/** The exit status that passes the container's on: its own code when it is one (1–255), else 1. */
function passedOn(info: ExitInfo): number {
  return info.code !== null && info.code > 0 && info.code < 256 ? info.code : 1;
}

/** `Ready=` as the user wrote it. */
function readyLabel(cfg: ServiceConfig): string {
  return cfg.ready.kind === 'http' ? `http:${cfg.ready.path}` : cfg.ready.kind;
}

/** StartTimeout= passed before the container was ready. */
export function readyTimeoutError(cfg: ServiceConfig): PodsockError {
  return new PodsockError(
    'PODSOCK_ERR_READY_TIMEOUT',
    `Container ${q(cfg.containerName)} was not ready (Ready=${readyLabel(cfg)}) within StartTimeout=${formatTimespan(cfg.startTimeoutMs)}`,
  );
}

/** The container exited with a non-zero status after it was ready. */
export function containerFailedError(cfg: ServiceConfig, info: ExitInfo): PodsockError {
  return new PodsockError('PODSOCK_ERR_CONTAINER_FAILED', `Container ${q(cfg.containerName)} exited with ${exitText(info)}`, { exitCode: passedOn(info) });
}

/**
 * The container is gone before it was ready: say why, precisely, and make sure nothing is left (a
 * `podman run` that ended early can leave its container created but never started, `--rm` not applied).
 */
export async function exitedBeforeReady(podman: Podman, cfg: ServiceConfig, info: ExitInfo): Promise<PodsockError> {
  await stopContainer(podman, { cid: null, name: cfg.containerName }, 0).catch(() => undefined);
  if (info.code === 125 && !(await imageExists(podman, cfg.image).catch(() => true))) {
    return new PodsockError(
      'PODSOCK_ERR_PODMAN',
      `Failed to start container ${q(cfg.containerName)}: image ${q(cfg.image)} is not present locally (podman exit 125)`,
    );
  }
  // podman run's own failures (podman-run(1), EXIT STATUS): 125 podman, 126 cannot invoke, 127 not found.
  if (info.code !== null && info.code >= 125 && info.code <= 127) {
    return new PodsockError(
      'PODSOCK_ERR_PODMAN',
      `Failed to start container ${q(cfg.containerName)}: podman exited with ${info.code} (see podman's message above)`,
      { exitCode: info.code },
    );
  }
  return new PodsockError('PODSOCK_ERR_CONTAINER_EXITED', `Container ${q(cfg.containerName)} exited with ${exitText(info)} before it was ready`, {
    exitCode: passedOn(info),
  });
}
