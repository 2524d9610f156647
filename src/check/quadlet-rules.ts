/**
 * `podsock check` rules about Quadlet keys that podsock reads differently: Notify= is readiness,
 * which podsock takes from Ready= (config/load.ts). Pure.
 */
import type { ServiceConfig } from '../config/load.js';
import { q } from '../errors.js';
import { locationOf, type CheckWarning } from './warning.js';

/** Notify= set, but a Ready= (file or flag) that says something else wins over it. */
export function notifyOverridden(cfg: ServiceConfig): CheckWarning[] {
  if (cfg.notify === null || cfg.ready.kind === cfg.notify) return [];
  return [
    {
      code: 'notify-overridden',
      message: `Notify=${cfg.notify} is not used: Ready=${cfg.ready.kind} is set and wins; remove one of them`,
      ...locationOf(cfg.keyLines, 'Container.Notify'),
    },
  ];
}

/**
 * The unit whose %-specifiers `podsock check` uses: the unit file it checks (`podsock@.service` runs
 * as `podsock@NAME.service`), or `NAME.service` as `run` has standalone.
 */
export function unitForSpecifiers(name: string, unitFile: string | null): string {
  const base = unitFile === null ? null : unitFile.slice(unitFile.lastIndexOf('/') + 1);
  if (base === null || !base.endsWith('.service')) return `${name}.service`;
  return base.endsWith('@.service') ? `${base.slice(0, -'.service'.length)}${name}.service` : base;
}

/** "made from 'a.container', 'a.container.d/10-x.conf'" for check's summary. */
export function madeFrom(files: readonly string[]): string {
  return files.map((f) => q(f)).join(', ');
}
