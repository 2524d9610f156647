/**
 * `podsock check` rules about how the unit starts podsock: its start timeout against StartTimeout=,
 * and whether it runs podsock through podsock-launch. Pure: the CLI passes the unit parsed
 * (config/unit-syntax.ts), the configuration and where the launcher is built.
 */
import { basename } from 'node:path';
import type { ServiceConfig } from '../config/load.js';
import { formatTimespan, parseTimespan } from '../config/timespan.js';
import { findSection, type UnitFile } from '../config/unit-syntax.js';
import { isPodsockError, q } from '../errors.js';
import type { CheckWarning } from './warning.js';

/** systemd's DefaultTimeoutStartSec= (systemd-system.conf(5)), what an unset TimeoutStartSec= means. */
export const DEFAULT_TIMEOUT_START_MS = 90_000;

/** The last of TimeoutStartSec= and TimeoutSec= (which sets both, systemd.service(5)) in [Service], with its line. */
function startTimeout(unit: UnitFile): { key: string; value: string; line: number } | null {
  const e = (findSection(unit, 'Service')?.entries ?? []).filter((x) => x.key === 'TimeoutStartSec' || x.key === 'TimeoutSec').at(-1);
  return e === undefined || e.value.trim() === '' ? null : { key: e.key, value: e.value.trim(), line: e.line };
}

/**
 * TimeoutStartSec= shorter than StartTimeout=. podsock asks systemd for StartTimeout= and more with
 * EXTEND_TIMEOUT_USEC= (sd_notify(3)) once it starts podman, so a start still gets its time as long as
 * that message reaches systemd; but the unit then says something else than what happens, and a start
 * is killed at TimeoutStartSec= whenever the message does not arrive (NotifyAccess=, a systemd before
 * 236). 0 and infinity disable the timeout (systemd.service(5)).
 */
export function startTimeoutRule(unit: UnitFile, cfg: ServiceConfig): CheckWarning[] {
  const set = startTimeout(unit);
  let ms: number | null;
  try {
    ms = set === null ? DEFAULT_TIMEOUT_START_MS : parseTimespan(/^\d+$/.test(set.value) ? `${set.value}s` : set.value, set.key);
  } catch (err) {
    if (!isPodsockError(err)) throw err;
    return [];
  }
  if (ms === null || ms === 0 || ms >= cfg.startTimeoutMs) return [];
  const shown = set === null ? `TimeoutStartSec= is not set (so systemd's default ${formatTimespan(DEFAULT_TIMEOUT_START_MS)})` : `${set.key}=${set.value}`;
  return [
    {
      code: 'unit-start-timeout-short',
      message:
        `${shown} is shorter than StartTimeout ${q(formatTimespan(cfg.startTimeoutMs))}: systemd stops a start that takes longer unless podsock's ` +
        'EXTEND_TIMEOUT_USEC= reaches it in time; set TimeoutStartSec= to StartTimeout= plus the time podman needs to stop (as podsock generate writes it)',
      file: unit.file,
      line: set?.line ?? findSection(unit, 'Service')?.line ?? 1,
    },
  ];
}

/** ExecStart=' s words, its prefixes ('@', '-', ':', '+', '!', systemd.service(5)) and quotes removed. */
function execWords(value: string): string[] {
  const words = (value.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^["']|["']$/g, ''));
  if (words[0] !== undefined) words[0] = words[0].replace(/^[@\-:+!]+/, '');
  return words;
}

/**
 * ExecStart= runs `node …/podsock.cjs run` but not through podsock-launch (native/launch.c), which starts podman
 * from the last activation's plan while node boots; without it every cold start first waits for node
 * to load podsock. A unit whose ExecStart= does not run podsock is not about podsock and says nothing.
 * `launcher`: the podsock-launch built beside this podsock, or null when it is not built.
 */
export function launcherRule(unit: UnitFile, launcher: string | null): CheckWarning[] {
  const e = (findSection(unit, 'Service')?.entries ?? []).filter((x) => x.key === 'ExecStart' && x.value.trim() !== '').at(-1);
  if (e === undefined) return [];
  const words = execWords(e.value);
  if (basename(words[0] ?? '') === 'podsock-launch') return [];
  // The command `podsock` that installing the package puts on PATH (package.json "bin", written by
  // scripts/install-command.mjs) is a copy of podsock-launch: only node running the script skips it.
  const command = words.find((w) => /^podsock(\.c?js)?$/.test(basename(w)));
  if (command === undefined || !words.includes('run') || basename(command) === 'podsock') return [];
  const how =
    launcher === null
      ? "podsock-launch is not built here ('npx node-gyp rebuild' in the podsock package builds build/Release/podsock-launch)"
      : `run it as ExecStart=${launcher} NODE PODSOCK_SCRIPT run NAME, as 'podsock generate' writes it`;
  return [
    {
      code: 'unit-without-launcher',
      message: `ExecStart= runs podsock without podsock-launch: every cold start waits for node to load podsock before podman starts, where podsock-launch starts podman from the last activation's plan at once; ${how}`,
      file: unit.file,
      line: e.line,
    },
  ];
}
