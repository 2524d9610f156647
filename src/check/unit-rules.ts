/**
 * `podsock check` rules about the systemd unit that runs podsock, and where that unit is looked
 * for. Pure: the CLI reads the file and passes it parsed (config/unit-syntax.ts).
 *
 * Only the unit file itself is read, not its drop-ins (NAME.service.d/*.conf).
 */
import { join } from 'node:path';
import { q } from '../errors.js';
import type { UnitFile } from '../config/unit-syntax.js';
import { findSection } from '../config/unit-syntax.js';
import type { CheckWarning } from './warning.js';

/** The last assignment of `key` in [Service], with its line. */
function lastService(unit: UnitFile, key: string): { value: string; line: number } | null {
  const entries = findSection(unit, 'Service')?.entries.filter((e) => e.key === key) ?? [];
  const e = entries[entries.length - 1];
  return e === undefined ? null : { value: e.value, line: e.line };
}

/**
 * Type= must be notify: podsock sends READY=1 once the container is ready, and with any other type
 * systemd ignores it and declares the service started at once (systemd.service(5)). NotifyAccess=none
 * would drop podsock's messages. KillMode= other than mixed sends the first SIGTERM to podman and
 * conmon too, so the container is not stopped in order (systemd.kill(5); Quadlet uses mixed).
 */
export function unitWarnings(unit: UnitFile): CheckWarning[] {
  const out: CheckWarning[] = [];
  const file = unit.file;
  const type = lastService(unit, 'Type');
  if (type === null || type.value !== 'notify') {
    const shown = type === null ? "is not set (so 'simple')" : `is ${q(type.value)}`;
    out.push({
      code: 'unit-type-not-notify',
      message: `Type= ${shown}: systemd ignores podsock's READY=1 and considers the service started before the container is ready; set Type=notify`,
      file,
      ...(type === null ? { line: findSection(unit, 'Service')?.line ?? 1 } : { line: type.line }),
    });
  }
  const access = lastService(unit, 'NotifyAccess');
  if (access !== null && access.value === 'none') {
    out.push({ code: 'unit-notify-access', message: "NotifyAccess=none: systemd drops podsock's notifications; set NotifyAccess=main", file, line: access.line });
  }
  const kill = lastService(unit, 'KillMode');
  if (kill === null || kill.value !== 'mixed') {
    const shown = kill === null ? "is not set (so 'control-group')" : `is ${q(kill.value)}`;
    out.push({
      code: 'unit-kill-mode',
      message: `KillMode= ${shown}: systemd signals podman and conmon along with podsock instead of letting podsock stop the container; set KillMode=mixed`,
      file,
      ...(kill === null ? { line: findSection(unit, 'Service')?.line ?? 1 } : { line: kill.line }),
    });
  }
  return out;
}

/** Unit directories of the user manager, in systemd's order of precedence (systemd.unit(5), "Unit File Load Path"). */
export function userUnitDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs: string[] = [];
  const xdg = env.XDG_CONFIG_HOME;
  const home = env.HOME;
  if (xdg !== undefined && xdg.startsWith('/')) dirs.push(join(xdg, 'systemd/user'));
  else if (home !== undefined && home.startsWith('/')) dirs.push(join(home, '.config/systemd/user'));
  dirs.push('/etc/systemd/user');
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime.startsWith('/')) dirs.push(join(runtime, 'systemd/user'));
  dirs.push('/run/systemd/user', '/usr/local/lib/systemd/user', '/usr/lib/systemd/user');
  return dirs;
}

/** Unit directories of the system manager, in order of precedence. */
export const SYSTEM_UNIT_DIRS: readonly string[] = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'];

/**
 * Where the unit that runs service `name` may be, first match wins: NAME.service, then the template
 * instance podsock@NAME.service, then the template podsock@.service; system directories first for
 * root, user directories first otherwise.
 */
export function unitCandidates(name: string, env: NodeJS.ProcessEnv, uid: number): string[] {
  const dirs = uid === 0 ? [...SYSTEM_UNIT_DIRS, ...userUnitDirs(env)] : [...userUnitDirs(env), ...SYSTEM_UNIT_DIRS];
  const files = [`${name}.service`, `podsock@${name}.service`, 'podsock@.service'];
  return files.flatMap((f) => dirs.map((d) => join(d, f)));
}
