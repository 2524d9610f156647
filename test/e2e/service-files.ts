/**
 * The text of the files an e2e podsock service is made of, for the root and the rootless harness
 * alike: NAME.container for the fixture image in handover or proxy mode, and NAME.service running
 * podsock as units/podsock@.service does. Pure text; writing and starting them is the harnesses' part.
 */
import type { HostEnv } from './harness.js';

/** What the .container builders read of the host: the fixture image and how podman must run it. */
export type FixtureHost = Pick<HostEnv, 'fixtureImage' | 'podmanRunArgs'>;

/** Lines added to the fixture's .container file. */
export interface FixtureLines {
  /** [Container] lines after Environment=FIXTURE_NAME=NAME (e.g. more Environment=). */
  container?: string[];
  /** [Podsock] lines. */
  podsock?: string[];
}

/**
 * A handover-mode .container file for the fixture: Network=none (the socket is handed over, the
 * container needs no network), the host's /usr mounted when the test host runs the fixture with
 * `-v`, FIXTURE_NAME=NAME.
 */
export function handoverContainerFile(h: FixtureHost, name: string, o: FixtureLines = {}): string {
  const vol = h.podmanRunArgs[0] === '-v' && h.podmanRunArgs[1] !== undefined ? [`Volume=${h.podmanRunArgs[1]}`] : [];
  return [
    '[Container]',
    `Image=${h.fixtureImage}`,
    'Network=none',
    'Pull=never',
    ...vol,
    `Environment=FIXTURE_NAME=${name}`,
    ...(o.container ?? []),
    '',
    '[Podsock]',
    ...(o.podsock ?? []),
    '',
  ].join('\n');
}

/**
 * A proxy-mode .container file for the fixture: it binds 8080 on podman's default network (Network=none
 * would leave nothing to proxy to) and podsock proxies to it; the [Podsock] lines follow Mode=proxy
 * and Backend=8080.
 */
export function proxyContainerFile(h: FixtureHost, name: string, o: FixtureLines = {}): string {
  return [
    '[Container]',
    `Image=${h.fixtureImage}`,
    'Pull=never',
    `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
    `Environment=FIXTURE_NAME=${name}`,
    ...(o.container ?? []),
    '[Podsock]',
    'Mode=proxy',
    'Backend=8080',
    ...(o.podsock ?? []),
    '',
  ].join('\n');
}

/**
 * A handover-mode .container file for an image of the fixture (built by the auto-update tests) that
 * opts in with AutoUpdate=`policy`: Network=none, Ready=notify, StopTimeout=2s; the [Podsock] lines
 * follow (StartTimeout=, IdleTimeout=, …).
 */
export function autoUpdateContainerFile(h: FixtureHost, name: string, image: string, policy: 'registry' | 'local', podsock: string[]): string {
  return [
    '[Container]',
    `Image=${image}`,
    'Network=none',
    'Pull=never',
    `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
    `Environment=FIXTURE_NAME=${name}`,
    `AutoUpdate=${policy}`,
    '[Podsock]',
    'Ready=notify',
    'StopTimeout=2s',
    ...podsock,
    '',
  ].join('\n');
}

export interface PodsockServiceUnit {
  /** The ExecStart= command line: podsock run NAME and its arguments. */
  execStart: string;
  /** The file stdout and stderr are appended to (no journald on the test host). */
  log: string;
  /** A containers.conf podman needs on this host, or null. */
  containersConf: string | null;
  timeoutStartSec: number;
  /** Environment= lines before CONTAINERS_CONF=. */
  environment?: string[];
  /** [Service] lines at the end. */
  extra?: string[];
}

/**
 * NAME.service for the socket NAME.socket: Type=notify with NotifyAccess=main (READY=1 comes from
 * podsock itself), KillMode=mixed (SIGTERM to podsock alone, which stops the container), and, as
 * units/podsock@.service has it, ExecStopPost= that removes the container if podsock itself was killed.
 */
export function podsockServiceUnit(name: string, o: PodsockServiceUnit): string {
  return [
    '[Unit]',
    `Requires=${name}.socket`,
    `After=${name}.socket`,
    '[Service]',
    'Type=notify',
    'NotifyAccess=main',
    'KillMode=mixed',
    `TimeoutStartSec=${o.timeoutStartSec}`,
    'TimeoutStopSec=30',
    ...(o.environment ?? []),
    ...(o.containersConf === null ? [] : [`Environment=CONTAINERS_CONF=${o.containersConf}`]),
    `ExecStart=${o.execStart}`,
    `StandardOutput=append:${o.log}`,
    `StandardError=append:${o.log}`,
    `ExecStopPost=-/usr/bin/podman stop --ignore podsock-${name}`,
    `ExecStopPost=-/usr/bin/podman rm --force --ignore podsock-${name}`,
    ...(o.extra ?? []),
    '',
  ].join('\n');
}
