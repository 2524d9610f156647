/**
 * The memory benchmark's variants as files: systemd units, podsock's .container files and which of
 * them to start. Pure text (the one exception is podsockCommand()'s default check that the installed
 * command exists), so test/unit/bench/memory-units.test.ts checks every line; memory-systemd.ts writes them.
 *
 * Every variant serves localhost/podsock-bench-nginx (build-nginx-image.sh):
 *
 * - podsock-handover: NAME.socket + NAME.service running `podsock run NAME`, Mode=handover,
 *   Network=none; nginx adopts fd 3 through `NGINX=3;` (cold-units.ts activatedNginxConf()).
 * - podsock-proxy: the same with Mode=proxy, Backend=8080, on podman's default network.
 * - quadlet: what Quadlet generates for a .container file, without a socket: a Type=notify service
 *   running `podman run -d --sdnotify=conmon`, whose main process becomes conmon, publishing nginx on
 *   a loopback port.
 * - proxyd: systemd-socket-proxyd behind NAME.socket, in front of such a container service
 *   (NAME-app.service), the pairing systemd-socket-proxyd(8) describes.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { execLine, quoteWord } from '../../src/generate/unit-quote.js';
import { podsockContainerFile as coldContainerFile } from './cold-units.js';

export const MEMORY_VARIANTS = ['podsock-handover', 'podsock-proxy', 'quadlet', 'proxyd'] as const;
export type MemoryVariant = (typeof MEMORY_VARIANTS)[number];

export const PROXYD = '/lib/systemd/systemd-socket-proxyd';

/** How long podsock may stay idle: long enough that no service exits while it is measured. */
export const PODSOCK_IDLE_TIMEOUT = '1h';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The command line that runs podsock for service NAME, the one place to change it: the installed
 * command `REPO/dist/bin/podsock run NAME` when it is executable, otherwise what generated units ran
 * before it existed, `REPO/build/Release/podsock-launch NODE REPO/dist/bin/podsock.cjs run NAME`.
 */
export function podsockCommand(name: string, repo: string, node: string, executable: (path: string) => boolean = isExecutable): string[] {
  const installed = join(repo, 'dist', 'bin', 'podsock');
  if (executable(installed)) return [installed, 'run', name];
  return [join(repo, 'build', 'Release', 'podsock-launch'), node, join(repo, 'dist', 'bin', 'podsock.cjs'), 'run', name];
}

/** Everything the files need; paths are absolute. */
export interface MemoryUnitContext {
  /** The unit name without suffix, unique on the manager, e.g. `psmem-quadlet-1234-0`. */
  unit: string;
  /** Where requests go: the socket unit's port, or for quadlet the published port. */
  port: number;
  /** proxyd only: the port the container service publishes and proxyd forwards to. */
  appPort: number;
  image: string;
  /** podsock-handover: the host file holding activatedNginxConf(port). */
  nginxConf: string;
  /** The directory holding podsock's NAME.container files (PODSOCK_CONFIG_DIR). */
  configDir: string;
  /** The file both output streams are appended to (there is no journald on the test host). */
  log: string;
  /** CONTAINERS_CONF for podman, or null when podman's defaults work. */
  containersConf: string | null;
  podman: string;
  /** podsockCommand(unit, ...) */
  podsock: readonly string[];
}

/** A file to write: into the manager's unit directory or podsock's configuration directory. */
export interface OutFile {
  dir: 'unit' | 'config';
  name: string;
  text: string;
}

/** What the benchmark does with an installed service. */
export interface Layout {
  variant: MemoryVariant;
  unit: string;
  /** Units to `systemctl start`, in order (a socket, or a container service first). */
  start: string[];
  /** A port to wait for before the first request to `port` (proxyd: the container's), or null. */
  backendPort: number | null;
  port: number;
  /** The services whose main process's subtree counts. */
  services: string[];
  /** The containers whose conmon counts (and whose processes do not). */
  containers: string[];
  /** Every unit, for stopping and removing. */
  units: string[];
  /** Files outside the unit directory that systemd or podman leave behind (the quadlet cidfiles, %t/%N.cid). */
  leftovers: string[];
}

/** podsock names its container `podsock-NAME`; the container services take their unit's name. */
export function appUnit(variant: MemoryVariant, unit: string): string {
  return variant === 'proxyd' ? `${unit}-app` : unit;
}

/** Where things run and what to start, stop and measure; `xdgRuntimeDir` is the manager's %t. */
export function layout(variant: MemoryVariant, c: Pick<MemoryUnitContext, 'unit' | 'port' | 'appPort'>, xdgRuntimeDir: string): Layout {
  const u = c.unit;
  const base = (start: string[], backendPort: number | null, services: string[], containers: string[], units: string[], leftovers: string[]): Layout => ({
    variant,
    unit: u,
    start,
    backendPort,
    port: c.port,
    services,
    containers,
    units,
    leftovers,
  });
  switch (variant) {
    case 'podsock-handover':
    case 'podsock-proxy':
      return base([`${u}.socket`], null, [`${u}.service`], [`podsock-${u}`], [`${u}.socket`, `${u}.service`], []);
    case 'quadlet':
      return base([`${u}.service`], null, [`${u}.service`], [u], [`${u}.service`], [join(xdgRuntimeDir, `${u}.cid`)]);
    case 'proxyd': {
      const app = appUnit(variant, u);
      return base([`${app}.service`, `${u}.socket`], c.appPort, [`${u}.service`, `${app}.service`], [app], [`${u}.socket`, `${u}.service`, `${app}.service`], [
        join(xdgRuntimeDir, `${app}.cid`),
      ]);
    }
  }
}

/** The .socket unit: one loopback TCP listener. */
export function socketUnit(port: number): string {
  return ['[Socket]', `ListenStream=127.0.0.1:${port}`, ''].join('\n');
}

function envLines(c: MemoryUnitContext, extra: readonly string[] = []): string[] {
  const pairs = [...(c.containersConf === null ? [] : [`CONTAINERS_CONF=${c.containersConf}`]), ...extra];
  // %n stays a specifier: systemd puts the unit's name there, as Quadlet and units/podsock@.service do.
  return ['Environment=PODMAN_SYSTEMD_UNIT=%n', ...pairs.map((p) => `Environment=${quoteWord(p)}`)];
}

function outputLines(c: MemoryUnitContext): string[] {
  return [`StandardOutput=append:${c.log}`, `StandardError=append:${c.log}`, 'TimeoutStartSec=120s', 'TimeoutStopSec=40s'];
}

/** podsock's service, after units/podsock@.service, with podsock's configuration directory set. */
export function podsockService(c: MemoryUnitContext): string {
  const name = `podsock-${c.unit}`;
  return [
    '[Unit]',
    `Requires=${c.unit}.socket`,
    `After=${c.unit}.socket`,
    '',
    '[Service]',
    'Type=notify',
    'NotifyAccess=main',
    'KillMode=mixed',
    `RuntimeDirectory=podsock-${c.unit}`,
    'RuntimeDirectoryMode=0700',
    ...envLines(c, [`PODSOCK_CONFIG_DIR=${c.configDir}`]),
    `ExecStart=${execLine(c.podsock)}`,
    ...outputLines(c),
    `ExecStopPost=-${execLine([c.podman, 'stop', '--ignore', name])}`,
    `ExecStopPost=-${execLine([c.podman, 'rm', '--force', '--ignore', name])}`,
    '',
  ].join('\n');
}

/**
 * podsock's NAME.container: the cold-start benchmark's (handover: nginx adopts the socket in a container
 * without a network; proxy: the image's own nginx on 8080 on the default network), kept running.
 */
export function podsockContainerFile(variant: 'podsock-handover' | 'podsock-proxy', c: Pick<MemoryUnitContext, 'image' | 'nginxConf'>): string {
  return coldContainerFile(variant, c, PODSOCK_IDLE_TIMEOUT);
}

/**
 * A container service as Quadlet (podman 4.x) writes one for a .container file with
 * `PublishPort=127.0.0.1:PORT:8080`: `podman run -d` with a cidfile in %t, --sdnotify=conmon so that
 * podman reports conmon as MAINPID and READY=1 once the container runs (hence NotifyAccess=all), and
 * the container removed by ExecStop= and again, whatever happened, by ExecStopPost=.
 */
export function containerService(name: string, publishPort: number, c: MemoryUnitContext): string {
  const rm = `${execLine([c.podman, 'rm', '-v', '-f', '-i'])} --cidfile=%t/%N.cid`;
  return [
    '[Unit]',
    `Description=quadlet-style container ${name}`,
    '',
    '[Service]',
    'Type=notify',
    'NotifyAccess=all',
    'KillMode=mixed',
    ...envLines(c),
    `ExecStart=${execLine([c.podman, 'run', '-d', '--rm', '--replace', '--name', name])} --cidfile=%t/%N.cid ${execLine([
      '--sdnotify=conmon',
      '--log-driver=passthrough',
      '-p',
      `127.0.0.1:${publishPort}:8080`,
      c.image,
    ])}`,
    `ExecStop=${rm}`,
    `ExecStopPost=-${rm}`,
    ...outputLines(c),
    '',
  ].join('\n');
}

/** systemd-socket-proxyd as systemd-socket-proxyd(8) runs it: started by its socket, after the container service it forwards to. */
export function proxydService(c: MemoryUnitContext): string {
  const app = `${appUnit('proxyd', c.unit)}.service`;
  return [
    '[Unit]',
    `Requires=${c.unit}.socket ${app}`,
    `After=${c.unit}.socket ${app}`,
    '',
    '[Service]',
    `ExecStart=${execLine([PROXYD, `127.0.0.1:${c.appPort}`])}`,
    ...outputLines(c),
    '',
  ].join('\n');
}

/** Every file of one service of `variant`. */
export function memoryFiles(variant: MemoryVariant, c: MemoryUnitContext): OutFile[] {
  const unit = (name: string, text: string): OutFile => ({ dir: 'unit', name, text });
  switch (variant) {
    case 'podsock-handover':
    case 'podsock-proxy':
      return [
        { dir: 'config', name: `${c.unit}.container`, text: podsockContainerFile(variant, c) },
        unit(`${c.unit}.socket`, socketUnit(c.port)),
        unit(`${c.unit}.service`, podsockService(c)),
      ];
    case 'quadlet':
      return [unit(`${c.unit}.service`, containerService(c.unit, c.port, c))];
    case 'proxyd': {
      const app = appUnit(variant, c.unit);
      return [unit(`${app}.service`, containerService(app, c.appPort, c)), unit(`${c.unit}.socket`, socketUnit(c.port)), unit(`${c.unit}.service`, proxydService(c))];
    }
  }
}
