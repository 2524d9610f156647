/**
 * The one gate for configuration: finds and reads NAME.container, applies the command-line flags and
 * the `--` passthrough, validates everything once and returns a frozen, fully defaulted ServiceConfig.
 *
 * Precedence: [Podsock] flags win over the file. Passthrough options are appended after the file's
 * options (podman lets later options win); a passthrough image replaces Image= and its command
 * replaces Exec=; a passthrough `--name` replaces ContainerName=.
 *
 * Sections: [Container] and [Podsock] are read. [Unit], [Service], [Install] and [Quadlet] are allowed
 * and ignored - Quadlet copies them into the generated unit, but for podsock the unit is the .service
 * file that runs it, so settings there belong in that file. Sections named X-* are ignored as systemd
 * ignores them (systemd.unit(5)). Any other section is an error.
 *
 * Values never pass through a shell: each ends up as one argv element exactly as written.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';

import { PodsockError, q } from '../errors.js';
import { IMAGE_DASH, containerSectionToArgs, isValidContainerName } from './container-section.js';
import { assertSafeName, configCandidates, findConfigFile } from './find.js';
import { optionFacts, parsePodmanOptions, parsePodmanRunArgs } from './podman-args.js';
import { resolvePodsockSettings, type PodsockKey, type PodsockValues } from './podsock-section.js';
import { MAX_UNIT_FILE_BYTES, findSection, parseUnitBytes, type UnitFile } from './unit-syntax.js';

export type { ReadySpec, Backend, PodsockKey } from './podsock-section.js';

/** Everything loadConfig() needs; the CLI fills it from argv, process.env and process.getuid(). */
export interface LoadOptions {
  /** The service NAME (`podsock run NAME`). */
  name: string;
  /** `--config FILE`: use this file instead of searching. */
  configFile?: string;
  env: NodeJS.ProcessEnv;
  uid: number;
  /** [Podsock] settings given as flags; they win over the file. */
  flags: Partial<Record<PodsockKey, string>>;
  /** The words after `--`: podman run options, optionally an image and a command. */
  extraArgs: string[];
}

/** A service's complete, validated configuration: the [Podsock] values (podsock-keys.ts) and the container. Frozen. */
export interface ServiceConfig extends PodsockValues {
  name: string;
  /** The file used, or null when only `--` arguments define the container. */
  source: string | null;
  containerName: string;
  image: string;
  command: string[];
  /**
   * Every option for `podman run` from the file and the passthrough, in order. Not including what
   * podsock adds itself (--name, --replace, --rm, --cidfile, --sdnotify, ...).
   */
  podmanOptions: string[];
  /** A --health-cmd (other than 'none') is configured and --no-healthcheck is not. */
  hasHealthCheck: boolean;
  /** Every --publish value, in order. */
  publishPorts: string[];
  /** The first --network value, or null for podman's default. */
  network: string | null;
  /** The last --pull value, or null for podman's default. */
  pull: string | null;
  /** Where each file setting was made, keyed 'Section.Key' (e.g. 'Container.Image', 'Podsock.Mode'). */
  keyLines: Record<string, { file: string; line: number }>;
}

const IGNORED_SECTIONS = new Set(['Unit', 'Service', 'Install', 'Quadlet']);
const PASSTHROUGH = "arguments after '--'";

/** Reads at most MAX_UNIT_FILE_BYTES + 1 bytes, so a huge or endless file cannot exhaust memory. */
function readLimited(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(MAX_UNIT_FILE_BYTES + 1);
    let length = 0;
    while (length < buf.length) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buf.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

function readConfig(path: string, explicit: boolean): UnitFile {
  let bytes: Buffer;
  try {
    bytes = readLimited(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && explicit) {
      throw new PodsockError('PODSOCK_ERR_CONFIG_NOT_FOUND', `Configuration file ${q(path)} (from --config) does not exist`, {
        cause,
        details: { file: path },
      });
    }
    throw new PodsockError('PODSOCK_ERR_CONFIG', `Cannot read configuration file ${q(path)}: ${(cause as Error).message}`, {
      cause,
      details: { file: path },
    });
  }
  return parseUnitBytes(bytes, path);
}

function checkSections(unit: UnitFile): void {
  for (const s of unit.sections) {
    if (s.name === 'Container' || s.name === 'Podsock' || IGNORED_SECTIONS.has(s.name) || s.name.startsWith('X-')) continue;
    throw new PodsockError(
      'PODSOCK_ERR_CONFIG',
      `${unit.file}:${s.line}: unknown section [${s.name}] (podsock reads [Container] and [Podsock]; [Unit], [Service], [Install] and [X-...] are ignored)`,
      { details: { file: unit.file, line: s.line, section: s.name } },
    );
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The container name used when neither ContainerName= nor --name is given ('@' is not allowed by podman). */
export function defaultContainerName(name: string): string {
  return `podsock-${name.replaceAll('@', '_')}`;
}

/**
 * Loads, validates and freezes the configuration of service `opts.name` (see the module comment).
 * Synchronous. Throws PodsockError: 'PODSOCK_ERR_USAGE' for an unsafe NAME,
 * 'PODSOCK_ERR_CONFIG_NOT_FOUND' when no file exists and no passthrough was given (naming every place
 * looked) or when --config names a missing file, 'PODSOCK_ERR_TIMESPAN' for a bad time span and
 * 'PODSOCK_ERR_CONFIG' for everything else; file errors name `file:line` and the key, flag errors the flag.
 */
export function loadConfig(opts: LoadOptions): ServiceConfig {
  assertSafeName(opts.name);

  let source: string | null;
  if (opts.configFile !== undefined) {
    source = opts.configFile;
  } else {
    source = findConfigFile(opts.name, opts.env, opts.uid);
    if (source === null && opts.extraArgs.length === 0) {
      const looked = configCandidates(opts.name, opts.env, opts.uid);
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG_NOT_FOUND',
        `No configuration for ${q(opts.name)}: ${
          looked.length === 0
            ? 'there is no directory to look in (PODSOCK_CONFIG_DIR is unset and neither XDG_CONFIG_HOME nor HOME is an absolute path)'
            : `looked for ${looked.map((p) => q(p)).join(', ')}`
        }; ` +
          `create one of these, use --config FILE, or give podman run arguments after '--'`,
        { details: { name: opts.name, looked } },
      );
    }
  }

  const passthrough = parsePodmanRunArgs(opts.extraArgs, PASSTHROUGH);
  if (passthrough.name !== null && !isValidContainerName(passthrough.name)) {
    throw new PodsockError('PODSOCK_ERR_CONFIG', `${PASSTHROUGH}: invalid container name ${q(passthrough.name)} in '--name'`, {
      details: { where: PASSTHROUGH, value: passthrough.name },
    });
  }

  const unit = source === null ? null : readConfig(source, opts.configFile !== undefined);
  if (unit !== null) checkSections(unit);
  const containerSection = unit === null ? undefined : findSection(unit, 'Container');
  const container =
    containerSection === undefined || unit === null
      ? null
      : containerSectionToArgs(containerSection, { file: unit.file, pathExists: existsSync });
  const { keyLines: podsockLines, ...podsock } = resolvePodsockSettings(unit === null ? undefined : findSection(unit, 'Podsock'), source, opts.flags);

  let image: string;
  let command: string[];
  if (passthrough.image !== null) {
    // After '--' any word is the image (podman-args.ts); podman itself would read '-x' as an option.
    if (passthrough.image === '' || passthrough.image.startsWith('-')) {
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG',
        `${PASSTHROUGH}: ${passthrough.image === '' ? "the image is empty; expected an image name such as 'docker.io/library/nginx:latest'" : `image ${q(passthrough.image)} ${IMAGE_DASH}`}`,
        { details: { where: PASSTHROUGH, image: passthrough.image } },
      );
    }
    image = passthrough.image;
    command = passthrough.command;
  } else if (container !== null && container.image !== null) {
    image = container.image;
    command = container.command ?? [];
  } else if (source !== null) {
    const at = containerSection === undefined ? source : `${source}:${containerSection.line}`;
    throw new PodsockError(
      'PODSOCK_ERR_CONFIG',
      `${at}: Image= is required in section [Container] (or give the image after '--')`,
      { details: { file: source, section: 'Container', key: 'Image' } },
    );
  } else {
    throw new PodsockError('PODSOCK_ERR_CONFIG', `${PASSTHROUGH}: no image given (expected podman run arguments: [OPTIONS] IMAGE [COMMAND...])`, {
      details: { where: PASSTHROUGH },
    });
  }

  const podmanOptions = [...(container?.options ?? []), ...passthrough.options];
  const facts = optionFacts(parsePodmanOptions(podmanOptions, 'podman run options').flags);

  const keyLines: Record<string, { file: string; line: number }> = {};
  if (source !== null) {
    for (const [key, line] of Object.entries(container?.keyLines ?? {})) keyLines[`Container.${key}`] = { file: source, line };
    for (const [key, line] of Object.entries(podsockLines)) keyLines[`Podsock.${key}`] = { file: source, line };
  }

  return deepFreeze<ServiceConfig>({
    name: opts.name,
    source,
    containerName: passthrough.name ?? container?.containerName ?? defaultContainerName(opts.name),
    image,
    command,
    podmanOptions,
    ...podsock,
    hasHealthCheck: facts.hasHealthCheck,
    publishPorts: facts.publishPorts,
    network: facts.network,
    pull: facts.pull,
    keyLines,
  });
}
