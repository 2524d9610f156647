/**
 * Healthcheck readiness: the container is ready when `podman healthcheck run <container>` exits 0.
 *
 * podman 4.3.1 has no `--sdnotify=healthy` (added in 4.7.0), so podsock runs the container's healthcheck
 * itself, through the podman driver (`run`, injected so this file spawns nothing). What podman 4.3.1 answers,
 * observed on the test machine and matching `libpod/healthcheck.go` `checkHealthCheckCanBeRun()`:
 *
 * | situation                                  | exit | output                                                  |
 * |--------------------------------------------|------|---------------------------------------------------------|
 * | healthcheck passed                         | 0    | nothing                                                 |
 * | healthcheck failed (or still starting)     | 1    | stdout `unhealthy`                                      |
 * | container not created yet                  | 125  | `Error: unable to look up NAME to perform a health check: ... no such container` |
 * | container created but not running (yet)    | 125  | `Error: container ID is not running`                    |
 * | running container without a healthcheck    | 125  | `Error: container ID has no defined healthcheck`        |
 *
 * Decision: exit 1 and "not running"/"no such container" are retried with backoff; the container may be
 * starting, and if it has exited instead, the caller's race against the container's exit ends the wait.
 * "has no defined healthcheck" can never change for a running container, so it fails at once with
 * PODSOCK_ERR_CONFIG instead of burning the whole start timeout. Any other failure (lock contention, a
 * podman hiccup) is retried like exit 1: the start timeout bounds it.
 */

import { PodsockError, q } from '../errors.js';
import { pollUntil, type BackoffOptions } from './backoff.js';

/** What the podman driver reports for one finished command. */
export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface HealthyProbeOptions {
  /** Container name or id. */
  container: string;
  signal: AbortSignal;
  /**
   * Runs podman with `args` (not including `podman`). It should stop the command when `signal` aborts;
   * if it does not, the probe still rejects at once and ignores the late result.
   */
  run: (args: string[], signal: AbortSignal) => Promise<RunResult>;
  /** Default: 100 ms growing to 1000 ms; each attempt is a podman process, so start slower than tcp/http. */
  backoff?: Partial<BackoffOptions>;
}

export const HEALTHY_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 100, maxMs: 1000, factor: 2 });

/** The outcome of one `podman healthcheck run`. */
export type HealthcheckVerdict = 'healthy' | 'retry' | 'no-healthcheck';

/** Classify one `podman healthcheck run` result (pure; see the table in the module comment). */
export function classifyHealthcheck(result: RunResult): HealthcheckVerdict {
  if (result.exitCode === 0) return 'healthy';
  if (result.exitCode === 125 && /has no defined healthcheck/.test(result.stderr)) return 'no-healthcheck';
  return 'retry';
}

/** The argv (after `podman`) that runs `container`'s healthcheck once. */
export function healthcheckArgs(container: string): string[] {
  return ['healthcheck', 'run', container];
}

/**
 * Resolve when the container's healthcheck passes, retrying with backoff while it fails or the container
 * is not running yet. Rejects with `signal.reason` when `signal` aborts (at once, even while a podman
 * command is running); with PODSOCK_ERR_CONFIG when the container has no healthcheck; and with `run`'s
 * own error when `run` rejects (podman missing: nothing to retry).
 */
export async function waitHealthy(options: HealthyProbeOptions): Promise<void> {
  const { container, run } = options;
  await pollUntil(
    async (signal) => {
      const result = await run(healthcheckArgs(container), signal);
      const verdict = classifyHealthcheck(result);
      if (verdict === 'no-healthcheck') {
        throw new PodsockError(
          'PODSOCK_ERR_CONFIG',
          `Container ${q(container)} has no healthcheck, but readiness is 'healthy': define one with --health-cmd or HEALTHCHECK in the image`,
          { details: { container, stderr: result.stderr.slice(0, 512) } },
        );
      }
      return verdict === 'healthy';
    },
    { signal: options.signal, backoff: { ...HEALTHY_BACKOFF, ...options.backoff } },
  );
}
