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
 * Drop-ins (dropins.ts) are read after the file as systemd reads a unit's drop-ins, from the drop-in
 * directories Quadlet searches (NAME.container.d/, container.d/, ...) in every search directory, or
 * only in the file's own directory with --config. systemd
 * %-specifiers (specifiers.ts) are expanded in the file's values, never in flags or the `--`
 * passthrough: systemd has already expanded those in the unit's ExecStart=.
 *
 * Notify= of [Container] (Quadlet's readiness key) stands for Ready= when Ready= is not set, by flag
 * or in [Podsock]: Notify=healthy is Ready=healthy and Notify=true is Ready=notify. A Ready= that is
 * set wins; `podsock check` warns when the two disagree.
 *
 * Values never pass through a shell: each ends up as one argv element exactly as written.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';

import { PodsockError, q } from '../errors.js';
import { IMAGE_DASH, containerSectionToArgs, isValidContainerName, type AutoUpdatePolicy } from './container-section.js';
import { findDropins } from './dropins.js';
import { assertSafeName, configCandidates, configSearchDirs, findConfigFile } from './find.js';
import { optionFacts, parsePodmanOptions, parsePodmanRunArgs } from './podman-args.js';
import { resolvePodsockSettings, type PodsockKey, type PodsockValues } from './podsock-section.js';
import { specifierContext } from './specifier-context.js';
import { SpecifierError, expandSpecifiers, type SpecifierContext } from './specifiers.js';
import { MAX_UNIT_FILE_BYTES, findSection, parseUnitBytes, type UnitEntry, type UnitFile, type UnitSection } from './unit-syntax.js';

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
  /** The values of %-specifiers; by default this process's (specifier-context.ts), unit `NAME.service` standalone. */
  specifiers?: SpecifierContext;
}

/** A service's complete, validated configuration: the [Podsock] values (podsock-keys.ts) and the container. Frozen. */
export interface ServiceConfig extends PodsockValues {
  name: string;
  /** The file used, or null when only `--` arguments define the container. */
  source: string | null;
  /** The files that made the configuration, in the order they were read: `source`, then its drop-ins. */
  files: string[];
  /** Notify= of [Container] ('healthy', 'notify') when set, whether or not it gave Ready=. */
  notify: 'healthy' | 'notify' | null;
  /** AutoUpdate= of [Container]: the policy of `podman auto-update` and `podsock auto-update`, or null. */
  autoUpdate: AutoUpdatePolicy | null;
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

function readConfig(path: string, explicit: boolean, base?: UnitFile): UnitFile {
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
  return parseUnitBytes(bytes, path, base);
}

function checkSections(unit: UnitFile): void {
  for (const s of unit.sections) {
    if (s.name === 'Container' || s.name === 'Podsock' || IGNORED_SECTIONS.has(s.name) || s.name.startsWith('X-')) continue;
    const file = s.file ?? unit.file;
    throw new PodsockError(
      'PODSOCK_ERR_CONFIG',
      `${file}:${s.line}: unknown section [${s.name}] (podsock reads [Container] and [Podsock]; [Unit], [Service], [Install] and [X-...] are ignored)`,
      { details: { file, line: s.line, section: s.name } },
    );
  }
}

/**
 * resolvePodsockSettings(); when the Ready= that Notify= stands for is refused, the error names
 * Notify= (the key the user wrote) instead of Ready=.
 */
function resolveNamingNotify(section: UnitSection | undefined, source: string | null, flags: LoadOptions['flags'], mainFile: string | null): ReturnType<typeof resolvePodsockSettings> {
  try {
    return resolvePodsockSettings(section, source, flags);
  } catch (err) {
    const ready = section?.entries.filter((e) => e.key === 'Ready').at(-1);
    const where = ready === undefined ? null : `${ready.file ?? mainFile ?? '?'}:${ready.line}: Ready`;
    if (!(err instanceof PodsockError) || ready === undefined || where === null || section?.entries.at(-1) !== ready || err.details.where !== where || !isFromNotify(ready)) throw err;
    const notifyWhere = `${where.slice(0, -'Ready'.length)}Notify=${ready.value} (Ready=${ready.value} for podsock)`;
    throw new PodsockError(err.code, `${notifyWhere}${err.message.slice(where.length)}`, { cause: err, details: { ...err.details, where: notifyWhere, key: 'Notify' } });
  }
}

/** The Ready= entries withNotify() makes are marked so. */
const FROM_NOTIFY = new WeakSet<UnitEntry>();
function isFromNotify(e: UnitEntry): boolean {
  return FROM_NOTIFY.has(e);
}

/** The file and its drop-ins (dropins.ts), merged in order. */
function readWithDropins(source: string, opts: LoadOptions): UnitFile {
  let unit = readConfig(source, opts.configFile !== undefined);
  const dirs = opts.configFile !== undefined ? [dirname(source)] : configSearchDirs(opts.env, opts.uid);
  for (const dropin of findDropins(source, dirs)) unit = readConfig(dropin, false, unit);
  return unit;
}

/** The [Podsock] section with its values' specifiers expanded (all are single values). */
function expandPodsock(section: UnitSection | undefined, file: string, ctx: SpecifierContext): UnitSection | undefined {
  if (section === undefined) return undefined;
  const entries = section.entries.map((e): UnitEntry => {
    try {
      return { ...e, value: expandSpecifiers(e.value, ctx) };
    } catch (err) {
      if (!(err instanceof SpecifierError)) throw err;
      const at = e.file ?? file;
      throw new PodsockError('PODSOCK_ERR_CONFIG', `${at}:${e.line}: ${e.key}=${q(e.value)}: ${err.message}`, {
        cause: err,
        details: { file: at, line: e.line, section: 'Podsock', key: e.key, value: e.value },
      });
    }
  });
  return { ...section, entries };
}

/** [Podsock] with the Ready= that [Container] Notify= stands for, when neither flag nor file sets Ready=. */
function withNotify(section: UnitSection | undefined, container: UnitSection | undefined, notify: 'healthy' | 'notify' | null, flags: LoadOptions['flags']): UnitSection | undefined {
  if (notify === null || flags.Ready !== undefined || section?.entries.some((e) => e.key === 'Ready') === true) return section;
  const from = container?.entries.filter((e) => e.key === 'Notify').at(-1);
  if (from === undefined) return section;
  const ready: UnitEntry = { key: 'Ready', value: notify, line: from.line, ...(from.file === undefined ? {} : { file: from.file }) };
  FROM_NOTIFY.add(ready);
  return section === undefined ? { name: 'Podsock', line: from.line, entries: [ready] } : { ...section, entries: [...section.entries, ready] };
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

  const unit = source === null ? null : readWithDropins(source, opts);
  if (unit !== null) checkSections(unit);
  const specifiers = opts.specifiers ?? specifierContext({ env: opts.env, uid: opts.uid, fallbackUnit: `${opts.name}.service` });
  const containerSection = unit === null ? undefined : findSection(unit, 'Container');
  const container =
    containerSection === undefined || unit === null
      ? null
      : containerSectionToArgs(containerSection, { file: unit.file, pathExists: existsSync, specifiers });
  const podsockSection = unit === null ? undefined : withNotify(expandPodsock(findSection(unit, 'Podsock'), unit.file, specifiers), containerSection, container?.notify ?? null, opts.flags);
  const { keyLines: podsockLines, ...podsock } = resolveNamingNotify(podsockSection, source, opts.flags, unit?.file ?? null);

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

  // Where each key was last set: the entries remember their file (the .container file or a drop-in).
  const keyLines: Record<string, { file: string; line: number }> = {};
  if (source !== null) {
    const fileOf = (section: UnitSection | undefined, key: string, line: number): string =>
      section?.entries.filter((e) => e.key === key && e.line === line).at(-1)?.file ?? source;
    for (const [key, line] of Object.entries(container?.keyLines ?? {})) keyLines[`Container.${key}`] = { file: fileOf(containerSection, key, line), line };
    for (const [key, line] of Object.entries(podsockLines)) keyLines[`Podsock.${key}`] = { file: fileOf(podsockSection, key, line as number), line: line as number };
  }

  return deepFreeze<ServiceConfig>({
    name: opts.name,
    source,
    files: [...(unit?.files ?? [])],
    notify: container?.notify ?? null,
    autoUpdate: container?.autoUpdate ?? null,
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
