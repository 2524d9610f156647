/**
 * The unit `podman auto-update` restarts for a service: podman labels a container PODMAN_SYSTEMD_UNIT
 * with the variable of that name it finds in its environment (podman-auto-update(1)), and
 * auto-update restarts that unit and rolls back when the restart fails. Quadlet sets the variable in
 * every unit it writes; a podsock unit written by hand may not, so under systemd podsock names its
 * own unit, found from its cgroup as sd_pid_get_unit(3) finds it (config/process-unit.ts). Pure: the
 * caller reads /proc/self/cgroup.
 */
import { unitFromCgroup } from '../config/process-unit.js';

/**
 * PODMAN_SYSTEMD_UNIT when the environment sets it (not empty); else, unless standalone, the .service
 * unit `cgroup()` (the text of /proc/self/cgroup) shows this process in; else null. A `cgroup()` that
 * throws counts as no unit.
 */
export function podmanSystemdUnit(env: NodeJS.ProcessEnv, standalone: boolean, cgroup: () => string): string | null {
  const given = env.PODMAN_SYSTEMD_UNIT;
  if (given !== undefined && given !== '') return given;
  if (standalone) return null;
  let unit: string | null;
  try {
    unit = unitFromCgroup(cgroup());
  } catch {
    return null;
  }
  return unit !== null && unit.endsWith('.service') ? unit : null;
}
