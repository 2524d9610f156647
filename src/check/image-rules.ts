/**
 * `podsock check` rules about the image: whether it is in local storage, given the pull policy.
 * Pure: the CLI asks podman (`podman image exists`) and passes the answer. podman run pulls before it
 * creates the container, so a pull is part of the first start (podman-run(1), --pull).
 */
import type { ServiceConfig } from '../config/load.js';
import { formatTimespan } from '../config/timespan.js';
import { q } from '../errors.js';
import { locationOf, type CheckWarning } from './warning.js';

/**
 * `present`: the answer of `podman image exists`, or null when podman could not be asked (`why`
 * says why).
 */
export function imageWarnings(cfg: ServiceConfig, present: boolean | null, why: string | null = null): CheckWarning[] {
  const at = locationOf(cfg.keyLines, 'Container.Image');
  if (present === null) {
    return [{ code: 'image-unchecked', message: `cannot check whether image ${q(cfg.image)} is present: ${why ?? 'podman is not available'}, ignoring`, ...at }];
  }
  if (present) return [];
  if (cfg.pull === 'never') {
    return [
      {
        code: 'image-missing',
        message: `image ${q(cfg.image)} is not in local storage and the pull policy is 'never': every start will fail; pull or build it first ('podman pull ${cfg.image}')`,
        ...locationOf(cfg.keyLines, 'Container.Pull', 'Container.Image'),
      },
    ];
  }
  return [
    {
      code: 'image-not-local',
      message:
        `image ${q(cfg.image)} is not in local storage: the first start pulls it, and the pull counts against StartTimeout ${q(formatTimespan(cfg.startTimeoutMs))}; ` +
        `pull it in advance ('podman pull ${cfg.image}')`,
      ...at,
    },
  ];
}
