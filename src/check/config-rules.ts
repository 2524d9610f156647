/**
 * `podsock check` rules about the configuration itself: settings that load fine but do not do what
 * people expect. Pure: each takes the validated ServiceConfig and returns warnings.
 *
 * Proxy mode without Backend= is not a warning here: loadConfig() refuses it, so `check` reports it
 * as an invalid configuration (exit 78). Who else can reach a proxy-mode app is exposure-rules.ts.
 */
import type { ServiceConfig } from '../config/load.js';
import { formatTimespan } from '../config/timespan.js';
import { q } from '../errors.js';
import { locationOf, type CheckWarning } from './warning.js';

/** An IdleTimeout= under this makes almost every client wait for a container start. */
export const SHORT_IDLE_TIMEOUT_MS = 10_000;

/** PublishPort= in handover mode: the container already has systemd's socket. */
export function publishInHandover(cfg: ServiceConfig): CheckWarning[] {
  if (cfg.mode !== 'handover' || cfg.publishPorts.length === 0) return [];
  return [
    {
      code: 'publish-in-handover',
      message:
        `PublishPort ${cfg.publishPorts.map((p) => q(p)).join(', ')} in handover mode: the container gets the listening socket from systemd, ` +
        'so a published port is a second way in that podsock does not count as activity (and may take the address the socket wants); remove it',
      ...locationOf(cfg.keyLines, 'Container.PublishPort', 'Container.PodmanArgs'),
    },
  ];
}

/**
 * IdleTimeout= against the time a start may take. podsock cannot measure the start before it runs,
 * so two declared facts stand in for it: StartTimeout= (what the container is allowed to take) and
 * a floor of SHORT_IDLE_TIMEOUT_MS (a container start costs about 0.2-0.5 s with podman alone here,
 * plus the app's own start).
 */
export function idleTimeoutRules(cfg: ServiceConfig): CheckWarning[] {
  const idle = cfg.idleTimeoutMs;
  if (idle === null) return [];
  const at = locationOf(cfg.keyLines, 'Podsock.IdleTimeout');
  const out: CheckWarning[] = [];
  if (idle < SHORT_IDLE_TIMEOUT_MS) {
    out.push({
      code: 'idle-timeout-short',
      message:
        `IdleTimeout ${q(formatTimespan(idle))} is under ${formatTimespan(SHORT_IDLE_TIMEOUT_MS)}: the container stops after every short pause, ` +
        'and the next client waits for a whole container start; use a minute or more unless that is what you want',
      ...at,
    });
  }
  if (idle < cfg.startTimeoutMs) {
    out.push({
      code: 'idle-shorter-than-start',
      message:
        `IdleTimeout ${q(formatTimespan(idle))} is shorter than StartTimeout ${q(formatTimespan(cfg.startTimeoutMs))}: a container that needs ` +
        'most of its start time would be stopped again sooner than it took to start; raise IdleTimeout= or lower StartTimeout= to the real start time',
      ...at,
    });
  }
  return out;
}

/** Every configuration rule, in the order they are reported. */
export function configWarnings(cfg: ServiceConfig): CheckWarning[] {
  return [...publishInHandover(cfg), ...idleTimeoutRules(cfg)];
}
