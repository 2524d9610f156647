/**
 * What an activation is given: the service's setup, shared by every activation of one podsock (the CLI
 * builds it once), and the links to the supervisor that runs it.
 */
import type { ServiceConfig } from '../config/load.js';
import type { Frontend } from '../frontend.js';
import type { Logger } from '../log.js';
import type { Podman } from '../runtime/podman.js';
import type { Prestart } from '../runtime/prestart.js';
import type { ListenFd } from '../sd/listen-fds.js';
import type { ActivationStatus } from '../status/status-recorder.js';
import type { StartPlan } from './plan.js';

/** podman as podsock-launch started it before podsock (runtime/prestart.ts). */
export type StartedPrestart = Extract<Prestart, { kind: 'started' }>;

/** What every activation of a service shares: its configuration and the parts the CLI built. */
export interface ServiceSetup {
  cfg: ServiceConfig;
  log: Logger;
  /** Private runtime directory for the cidfile and the notify socket's directory. */
  runtimeDir: string;
  /** The listening sockets (adopted from systemd or bound by --listen). */
  listeners: ListenFd[];
  /** How connections are seen: proxy (accepts) or handover (kernel counts). */
  frontend: Frontend;
  /** The unit name for PODMAN_SYSTEMD_UNIT, or null. */
  unit: string | null;
  /** podsock's own watchdog (WATCHDOG_USEC), or null. */
  watchdog: { intervalMs: number } | null;
  /** Loopback ports podsock picked for the backends (proxy mode, unless directBackend), by backend index. */
  backendHostPorts: number[];
  /** The same for the backends of datagram sockets (published as /udp), by backend index; null where none. */
  backendUdpHostPorts?: ReadonlyArray<number | null>;
  /**
   * Proxy mode: reach the container's loopback from inside its network namespace instead of publishing
   * (runtime/container-netns.ts); needs podman detached (the conmon pid file).
   */
  directBackend: boolean;
  /** podsock's uid: published ports must be listened on by it (runtime/published-port.ts). */
  uid?: number;
  /** Relabel the notify mount for SELinux. */
  selinux: boolean;
  /** podman runs rootless (podsock is not root): published ports go through a user-space forwarder. */
  rootless: boolean;
  /**
   * Give back what start-up or serving needed (memory/release.ts): called after each period of
   * QUIET_RELEASE_MS without connections once the service is ready (memory/quiet-release.ts).
   */
  release?: () => void;
  /** Where to leave the plan for podsock-launch once a start succeeded, and the files it depends on (asked for then, not at start-up). */
  plan?: StartPlan | null;
  /** Where the activation reports starting, ready, the active count and stopping (status/status-recorder.ts). */
  status?: ActivationStatus | null;
}

/** What one activation gets from the supervisor that runs it. */
export interface ActivationLinks {
  /** The podman to run (found on first use). */
  podman: () => Podman;
  /** Sends to systemd; never throws. */
  notify: (fields: Array<[string, string]>) => void;
  /** Aborted by the first stop request. */
  stopSignal: AbortSignal;
  /** podman started by podsock-launch, to adopt (or stop) instead of starting it, or null. */
  prestart: StartedPrestart | null;
  /**
   * When the wait for this activation began, for the cold start recorded in the status file: podsock's
   * own start for the first activation under systemd (a client waits from then), else the activation's.
   */
  waitingSince?: number;
}
