/**
 * The systemd unit a process runs in, read from its /proc/PID/cgroup text the way sd_pid_get_unit(3)
 * and sd_pid_get_user_unit(3) read it (systemd src/basic/cgroup-util.c, cg_path_get_unit() and
 * cg_path_get_user_unit()): take the unified hierarchy's path ("0::", or the "name=systemd" line of a
 * legacy hierarchy), skip the leading *.slice components, and the next component is the unit. When
 * that unit is a user manager ('user@1000.service') and the path goes on, the process belongs to a
 * unit of that user manager, found the same way in the rest of the path.
 *
 * Pure.
 */

/** Longest unit name systemd accepts (UNIT_NAME_MAX, src/basic/unit-name.h). */
export const UNIT_NAME_MAX = 255;

// unit_name_is_valid(): letters, digits and ":-_.\@", a type suffix after the last '.'.
const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+\.[a-z]+$/;

/** Whether `name` is a valid unit name such as 'podsock@web.service'. */
export function isUnitName(name: string): boolean {
  return name.length <= UNIT_NAME_MAX && UNIT_NAME.test(name) && !name.startsWith('.');
}

/** cg_unescape(): a leading '_' was added by cg_escape() and goes. */
function cgUnescape(component: string): string {
  return component.startsWith('_') ? component.slice(1) : component;
}

/** The first component after leading *.slice components, unescaped, and where it is; null if none. */
function firstUnit(components: readonly string[], from: number): { unit: string; at: number } | null {
  let i = from;
  while (i < components.length && cgUnescape(components[i] as string).endsWith('.slice')) i++;
  if (i >= components.length) return null;
  const unit = cgUnescape(components[i] as string);
  return isUnitName(unit) ? { unit, at: i } : null;
}

/** The cgroup path of the unified ("0::") or else the systemd ("name=systemd") hierarchy, or null. */
export function systemdCgroupPath(cgroupText: string): string | null {
  let legacy: string | null = null;
  for (const line of cgroupText.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    if (m[1] === '0' && m[2] === '') return m[3] as string;
    if ((m[2] as string).split(',').includes('name=systemd')) legacy = m[3] as string;
  }
  return legacy;
}

/**
 * The unit of the process whose /proc/PID/cgroup is `cgroupText`: a user manager's unit when the
 * process runs under one, else the system unit; null when the path names no unit (a container's
 * "0::/", the root cgroup).
 */
export function unitFromCgroup(cgroupText: string): string | null {
  const path = systemdCgroupPath(cgroupText);
  if (path === null) return null;
  const components = path.split('/').filter((c) => c !== '');
  const system = firstUnit(components, 0);
  if (system === null) return null;
  if (/^user@\d+\.service$/.test(system.unit)) {
    const user = firstUnit(components, system.at + 1);
    if (user !== null) return user.unit;
  }
  return system.unit;
}
