/**
 * The cold-start benchmark's variants as files: a .socket and a .service unit for each, the nginx
 * configuration that takes the inherited socket, and podsock's .container files. Pure text, so the
 * unit tests check every line (test/unit/bench/cold-units.test.ts); cold-systemd.ts writes them.
 *
 * All four variants run the same image (localhost/podsock-bench-nginx, build-nginx-image.sh):
 *
 * - native-none: podman's own socket activation, the anchor of the issue. The service runs
 *   `podman run --network none` directly; podman passes LISTEN_FDS and fd 3 into the container
 *   (podman's libpod/oci_conmon_common.go) and nginx adopts fd 3 through `NGINX=3;`.
 * - native-default: the same on podman's default network. The inherited fd is still the host's
 *   socket, so the container's own network namespace plays no part in serving it.
 * - podsock-handover: `podsock run` with the same container, Network=none, Mode=handover.
 * - podsock-proxy: `podsock run` with the image's stock configuration (nginx binds 8080 inside),
 *   the default network, Mode=proxy, Backend=8080.
 */
import { execLine, quoteWord } from '../../src/generate/unit-quote.js';
import { benchNginxConf } from './nginx-image.js';

export const COLD_VARIANTS = ['native-none', 'native-default', 'podsock-handover', 'podsock-proxy'] as const;
export type ColdVariant = (typeof COLD_VARIANTS)[number];

/** Where nginx finds the configuration that adopts the inherited socket, inside the container. */
export const ACTIVATED_CONF_PATH = '/etc/nginx/bench-activated.conf';

/** The nginx arguments of the variants that take the socket from systemd. */
export const ACTIVATED_NGINX_ARGS: readonly string[] = ['nginx', '-c', ACTIVATED_CONF_PATH, '-g', 'daemon off;'];

/** The image's nginx configuration (nginx-image.ts) listening on exactly the socket unit's address. */
export function activatedNginxConf(port: number): string {
  return benchNginxConf(`127.0.0.1:${port}`);
}

/** Everything the unit texts need; paths are absolute. */
export interface ColdUnitContext {
  /** The unit name without suffix, e.g. `podsock-bench-cold-native-none-1234`. */
  unit: string;
  port: number;
  image: string;
  /** The host file holding activatedNginxConf(port). */
  nginxConf: string;
  /** podsock's .container file for the podsock variants. */
  podsockConfig: string;
  /** The file both of the service's output streams are appended to (there is no journald here). */
  log: string;
  /** CONTAINERS_CONF for podman, or null when podman's defaults work. */
  containersConf: string | null;
  podman: string;
  node: string;
  /** dist/bin/podsock.cjs of the build under test. */
  podsockMain: string;
  /** Its podsock-launch, which ExecStart= runs podsock through as `podsock generate` writes it; null: node directly. */
  launcher: string | null;
  /**
   * The installed `podsock` command (dist/bin/podsock beside podsockMain): ExecStart= is then the plain
   * `podsock run NAME` line users write and units/podsock@.service has. Takes precedence over launcher.
   */
  command?: string | null;
}

/** The container's name: podsock names its container `podsock-NAME`; the native ones take the unit's name. */
export function containerName(variant: ColdVariant, unit: string): string {
  return variant.startsWith('podsock-') ? `podsock-${unit}` : unit;
}

/** The .socket unit: one loopback TCP listener, nothing else tuned. */
export function socketUnit(c: ColdUnitContext): string {
  return ['[Socket]', `ListenStream=127.0.0.1:${c.port}`, ''].join('\n');
}

/** `podman run` of a native variant, as Podman's socket-activation tutorial runs it from a service. */
export function nativeRunArgv(variant: 'native-none' | 'native-default', c: ColdUnitContext): string[] {
  return [
    c.podman,
    'run',
    '--rm',
    // A container left behind by an interrupted sample must not fail the next start.
    '--replace',
    '--name',
    containerName(variant, c.unit),
    ...(variant === 'native-none' ? ['--network', 'none'] : []),
    '-e',
    'NGINX=3;',
    '-v',
    `${c.nginxConf}:${ACTIVATED_CONF_PATH}:ro`,
    c.image,
    ...ACTIVATED_NGINX_ARGS,
  ];
}

/**
 * The .service unit. The podsock variants follow units/podsock@.service (Type=notify, KillMode=mixed,
 * RuntimeDirectory=); the native ones are the simplest service around `podman run`. Both remove
 * their container in ExecStopPost= so that a killed run leaves nothing for the next sample.
 */
export function serviceUnit(variant: ColdVariant, c: ColdUnitContext): string {
  const name = containerName(variant, c.unit);
  const env = c.containersConf === null ? [] : [`Environment=${quoteWord(`CONTAINERS_CONF=${c.containersConf}`)}`];
  const common = [`StandardOutput=append:${c.log}`, `StandardError=append:${c.log}`, 'TimeoutStartSec=120s', 'TimeoutStopSec=40s'];
  const cleanup = [
    `ExecStopPost=-${execLine([c.podman, 'stop', '--ignore', name])}`,
    `ExecStopPost=-${execLine([c.podman, 'rm', '--force', '--ignore', name])}`,
  ];
  const head = ['[Unit]', `Requires=${c.unit}.socket`, `After=${c.unit}.socket`, '', '[Service]'];
  if (variant === 'native-none' || variant === 'native-default') {
    return [...head, 'Type=simple', ...env, `ExecStart=${execLine(nativeRunArgv(variant, c))}`, ...common, ...cleanup, ''].join('\n');
  }
  return [
    ...head,
    'Type=notify',
    'NotifyAccess=main',
    'KillMode=mixed',
    `RuntimeDirectory=${c.unit}`,
    'RuntimeDirectoryMode=0700',
    ...env,
    `ExecStart=${execLine([...(c.command !== undefined && c.command !== null ? [c.command] : [...(c.launcher === null ? [] : [c.launcher]), c.node, c.podsockMain]), 'run', c.unit, '--config', c.podsockConfig])}`,
    ...common,
    ...cleanup,
    '',
  ].join('\n');
}

/**
 * podsock's .container file. The handover one gives the same container as native-none; the proxy
 * one the image's own command on the default network. IdleTimeout=infinity by default: the benchmark
 * stops the service itself after each sample.
 */
export function podsockContainerFile(variant: 'podsock-handover' | 'podsock-proxy', c: Pick<ColdUnitContext, 'image' | 'nginxConf'>, idleTimeout = 'infinity'): string {
  const lines = ['[Container]', `Image=${c.image}`, 'Pull=never'];
  if (variant === 'podsock-handover') {
    lines.push(
      'Network=none',
      `Environment=${quoteWord('NGINX=3;')}`,
      `Volume=${c.nginxConf}:${ACTIVATED_CONF_PATH}:ro`,
      `Exec=${ACTIVATED_NGINX_ARGS.map(quoteWord).join(' ')}`,
      '',
      '[Podsock]',
      'Mode=handover',
      'Ready=started',
    );
  } else {
    lines.push('', '[Podsock]', 'Mode=proxy', 'Backend=8080', 'Ready=tcp');
  }
  lines.push(`IdleTimeout=${idleTimeout}`, '');
  return lines.join('\n');
}
