/**
 * `podsock check` rules about who else can reach a proxy-mode app, past the socket unit's access
 * control (SocketMode=, IPAddressAllow=, IPAddressDeny=: systemd.socket(5), systemd.resource-control(5)).
 * Pure: the CLI passes the configuration, whether podsock runs rootless, and the socket unit parsed.
 *
 * - Rootful, podsock connects from inside the container's network namespace (runtime/container-netns.ts):
 *   nothing of podsock's listens on the host. But on a bridge network the container has an address the
 *   host routes to, and any local user can connect to the app there, as to any podman container.
 *   Said when the socket unit restricts access, with Network=none as the remedy (podsock proxies it).
 * - Rootless, the backend is published on 127.0.0.1 (runtime/published-port.ts): any local user can
 *   connect to that port. Always said; with Network=none there is nothing to connect to at all.
 */
import { join } from 'node:path';
import type { ServiceConfig } from '../config/load.js';
import { findSection, type UnitFile } from '../config/unit-syntax.js';
import { q } from '../errors.js';
import { SYSTEM_UNIT_DIRS, userUnitDirs } from './unit-rules.js';
import { locationOf, type CheckWarning } from './warning.js';

/** Network modes without an address the host routes to the container (podman-run(1) --network). */
const NO_BRIDGE = /^(none|host|container:|ns:|pod$)/;

/** How the socket unit restricts who may connect, in its own words, or null when it does not. */
export function socketRestriction(socket: UnitFile | null): string | null {
  const entries = findSection(socket ?? { file: '', sections: [] }, 'Socket')?.entries ?? [];
  const found: string[] = [];
  const last = (key: string): string | undefined => entries.filter((e) => e.key === key).at(-1)?.value;
  const mode = last('SocketMode');
  // systemd's default is 0666; anything that takes a permission away from group or others restricts.
  if (mode !== undefined && /^[0-7]{1,4}$/.test(mode) && (parseInt(mode, 8) & 0o666) !== 0o666) found.push(`SocketMode=${mode}`);
  for (const key of ['IPAddressAllow', 'IPAddressDeny']) {
    const values = entries.filter((e) => e.key === key).map((e) => e.value);
    // An empty assignment resets the list (systemd.resource-control(5)).
    const kept = values.slice(values.lastIndexOf('') + 1).filter((v) => v.trim() !== '');
    if (kept.length > 0) found.push(`${key}=${kept.join(' ')}`);
  }
  return found.length === 0 ? null : found.join(', ');
}

/** Who else reaches a proxy-mode app; see the module comment. */
export function proxyExposure(cfg: ServiceConfig, facts: { rootless: boolean; socket: UnitFile | null }): CheckWarning[] {
  if (cfg.mode !== 'proxy') return [];
  const network = cfg.network;
  if (facts.rootless) {
    if (network === 'none') {
      return [
        {
          code: 'proxy-network-none',
          message:
            "Network 'none' in rootless proxy mode: podsock forwards connections to a container port published on 127.0.0.1, which needs a container network " +
            '(podman drops published ports with Network=none); remove Network=none, run the service as root (podsock then proxies from inside the container), ' +
            'or use Mode=handover for an app that takes its socket from LISTEN_FDS',
          ...locationOf(cfg.keyLines, 'Container.Network', 'Container.PodmanArgs'),
        },
      ];
    }
    return [
      {
        code: 'proxy-port-published',
        message:
          'rootless proxy mode: podsock reaches the app through a port podman publishes on 127.0.0.1 (picked at each start), and every local user can connect ' +
          "to that port directly, past the socket unit's access control (SocketMode=, IPAddressAllow=) and without counting as activity; " +
          'use Mode=handover (the app takes the socket itself) or run the service as root where that matters',
        ...locationOf(cfg.keyLines, 'Podsock.Mode'),
      },
    ];
  }
  const restricted = socketRestriction(facts.socket);
  if (restricted === null || (network !== null && NO_BRIDGE.test(network))) return [];
  return [
    {
      code: 'proxy-bridge-reachable',
      message:
        `the socket unit restricts access (${restricted}), but the container is on ${network === null ? "podman's default network" : `network ${q(network)}`}, ` +
        'where every local user can connect to the app at its container address, as to any podman container; ' +
        'set Network=none unless the app needs the network: podsock proxies from inside the container and needs none',
      ...locationOf(cfg.keyLines, 'Container.Network', 'Podsock.Mode'),
    },
  ];
}

/** Where the socket unit of service `name` may be, first match wins (as unitCandidates() for the service). */
export function socketCandidates(name: string, env: NodeJS.ProcessEnv, uid: number): string[] {
  const dirs = uid === 0 ? [...SYSTEM_UNIT_DIRS, ...userUnitDirs(env)] : [...userUnitDirs(env), ...SYSTEM_UNIT_DIRS];
  const files = [`${name}.socket`, `podsock@${name}.socket`, 'podsock@.socket'];
  return files.flatMap((f) => dirs.map((d) => join(d, f)));
}
