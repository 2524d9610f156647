/**
 * `podsock check` rule about Ready=healthy: podsock runs the container's health check until it passes
 * (readiness/healthy.ts), so a container without one can never become ready; podman answers "has no
 * defined healthcheck" and every start fails. Pure: the CLI asks podman whether the image defines a
 * HEALTHCHECK and passes the answer.
 */
import type { ServiceConfig } from '../config/load.js';
import { q } from '../errors.js';
import { locationOf, type CheckWarning } from './warning.js';

/**
 * Ready=healthy (or Notify=healthy) without HealthCmd=. `imageCheck`: whether the image defines a
 * HEALTHCHECK (podman image inspect), null when that is unknown. An image's own check is no warning.
 */
export function healthyWithoutCmd(cfg: ServiceConfig, imageCheck: boolean | null): CheckWarning[] {
  if (cfg.ready.kind !== 'healthy' || cfg.hasHealthCheck || imageCheck === true) return [];
  const image =
    imageCheck === false
      ? `and image ${q(cfg.image)} defines no HEALTHCHECK`
      : `and podman could not tell whether image ${q(cfg.image)} defines a HEALTHCHECK`;
  return [
    {
      code: 'healthy-without-healthcmd',
      message:
        `Ready=healthy without HealthCmd= ${image}: the container has no health check to pass, so every start fails. ` +
        "An image's HEALTHCHECK survives only in docker format: 'podman build' makes OCI images by default and drops it " +
        "('HEALTHCHECK is not supported for OCI image format'); set HealthCmd= in [Container], or build with '--format docker'",
      ...locationOf(cfg.keyLines, 'Podsock.Ready', 'Container.Notify'),
    },
  ];
}
