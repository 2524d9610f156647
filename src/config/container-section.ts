/**
 * The [Container] section, mapped to `podman run` options the way Quadlet maps it
 * (podman-systemd.unit(5); containers/podman pkg/systemd/quadlet/quadlet.go, ConvertContainer()),
 * so a Quadlet .container file works with podsock unchanged where podsock supports its keys.
 *
 * How each kind of key is read, as Quadlet's unit-file lookups do (pkg/systemd/parser/unitfile.go):
 * - single value (Lookup): the last assignment; one pair of surrounding double quotes is removed;
 * - list (LookupAll): every assignment, each value as written (Volume=, PublishPort=, Network=, ...);
 * - word list (LookupAllStrv): every assignment split into words with quotes, no escapes
 *   (AddCapability=, DropCapability=, Sysctl=, AddDevice=, UIDMap=, GIDMap=, LogOpt=);
 * - argument list (LookupAllArgs): every assignment split like Exec= (split-words.ts) (PodmanArgs=,
 *   Mount=, EnvironmentFile=, Secret=, Mask=, Unmask=);
 * - KEY=VALUE list (LookupAllKeyVal): Environment=, Label=, Annotation=;
 * - booleans as systemd's parse_boolean() (1/yes/y/true/t/on, 0/no/n/false/f/off, any case); podsock
 *   rejects anything else where Quadlet would silently read "false".
 *
 * The options come out in Quadlet's order (its map-driven groups in a fixed order here). Relative
 * paths in Volume=/Mount= sources ("./data") and EnvironmentFile= are resolved against the directory
 * of the .container file, as Quadlet does.
 *
 * Not supported, with a message saying why: keys that only make sense to Quadlet's unit generator or
 * that podsock controls (Notify=, Pod=, Rootfs=, ServiceName=, ReloadCmd=, GlobalArgs=, ...), and
 * references to other Quadlet units (Image=x.image, Network=x.network, Volume=x.volume:/d).
 * systemd %-specifiers (specifiers.ts) are expanded in every value, word by word after splitting,
 * as systemd expands them in the ExecStart= words Quadlet writes: a '%I' that gives 'a b' stays one
 * word. Validation (Image=, ContainerName=, ExposeHostPort=) sees the expanded value. Errors name the
 * file each entry came from: the .container file or one of its drop-ins.
 */
import { isAbsolute, join } from 'node:path';

import { PodsockError, q } from '../errors.js';
import { parsePodmanOptions } from './podman-args.js';
import { SpecifierError, expandSpecifiers, type SpecifierContext } from './specifiers.js';
import { splitEnvironment, splitWords } from './split-words.js';
import type { UnitEntry, UnitSection } from './unit-syntax.js';

/** What the [Container] section contributes to `podman run`. */
export interface ContainerSettings {
  /** Image=, or null when the section has none. */
  image: string | null;
  /** Exec= split into words, or null when unset. */
  command: string[] | null;
  /** ContainerName=, overridden by a `--name` in PodmanArgs=; null when neither is set. */
  containerName: string | null;
  /** `podman run` options, in order. */
  options: string[];
  /** The line of the last assignment of each key present (after resets). */
  keyLines: Record<string, number>;
  /** Notify=: 'healthy' (Notify=healthy), 'notify' (a true boolean) or null (false or unset). */
  notify: 'healthy' | 'notify' | null;
  /** AutoUpdate=: 'registry' (also for podman's older 'image'), 'local', or null (unset, empty or 'disabled'). */
  autoUpdate: AutoUpdatePolicy | null;
}

/** The auto-update policies of podman-auto-update(1). */
export type AutoUpdatePolicy = 'registry' | 'local';

/** What container-section needs to know about its surroundings. */
export interface ContainerContext {
  /** The file, for messages and to resolve relative paths. */
  file: string;
  /** Whether a path exists (for AddDevice=-/dev/x); defaults to node:fs existsSync. */
  pathExists: (path: string) => boolean;
  /** The values of %-specifiers. */
  specifiers: SpecifierContext;
}

type Kind = 'single' | 'list' | 'strv' | 'args' | 'keyval' | 'bool' | 'exec';

/** Single-value keys that become `FLAG VALUE` (quadlet.go stringKeys). */
const STRING_FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['Timezone', '--tz'],
  ['PidsLimit', '--pids-limit'],
  ['ShmSize', '--shm-size'],
  ['Entrypoint', '--entrypoint'],
  ['WorkingDir', '--workdir'],
  ['IP', '--ip'],
  ['IP6', '--ip6'],
  ['HostName', '--hostname'],
  ['StopSignal', '--stop-signal'],
  ['StopTimeout', '--stop-timeout'],
  ['Pull', '--pull'],
  ['Memory', '--memory'],
  ['Retry', '--retry'],
  ['RetryDelay', '--retry-delay'],
];

/** List keys whose every value becomes `FLAG VALUE` (quadlet.go allStringsKeys). */
const LIST_FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['NetworkAlias', '--network-alias'],
  ['Ulimit', '--ulimit'],
  ['DNS', '--dns'],
  ['DNSOption', '--dns-option'],
  ['DNSSearch', '--dns-search'],
  ['GroupAdd', '--group-add'],
  ['AddHost', '--add-host'],
  ['Tmpfs', '--tmpfs'],
];

/** Boolean keys that become `FLAG` or `FLAG=false` (quadlet.go boolKeys). */
const BOOL_FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['RunInit', '--init'],
  ['EnvironmentHost', '--env-host'],
  ['ReadOnlyTmpfs', '--read-only-tmpfs'],
  ['HttpProxy', '--http-proxy'],
];

/** Health-check keys, in quadlet.go handleHealth() order, to `--health-SUFFIX VALUE`. */
const HEALTH_FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['HealthCmd', 'cmd'],
  ['HealthInterval', 'interval'],
  ['HealthOnFailure', 'on-failure'],
  ['HealthLogDestination', 'log-destination'],
  ['HealthMaxLogCount', 'max-log-count'],
  ['HealthMaxLogSize', 'max-log-size'],
  ['HealthRetries', 'retries'],
  ['HealthStartPeriod', 'start-period'],
  ['HealthTimeout', 'timeout'],
  ['HealthStartupCmd', 'startup-cmd'],
  ['HealthStartupInterval', 'startup-interval'],
  ['HealthStartupRetries', 'startup-retries'],
  ['HealthStartupSuccess', 'startup-success'],
  ['HealthStartupTimeout', 'startup-timeout'],
];

/** Every supported key and how its value is read. */
const KEYS: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  ['Image', 'single'],
  ['ContainerName', 'single'],
  ['Exec', 'exec'],
  ['LogDriver', 'single'],
  ['LogOpt', 'strv'],
  ['CgroupsMode', 'single'],
  ...STRING_FLAGS.map(([k]) => [k, 'single'] as [string, Kind]),
  ...LIST_FLAGS.map(([k]) => [k, 'list'] as [string, Kind]),
  ...BOOL_FLAGS.map(([k]) => [k, 'bool'] as [string, Kind]),
  ['Network', 'list'],
  ['NoNewPrivileges', 'bool'],
  ['SecurityLabelDisable', 'bool'],
  ['SecurityLabelNested', 'bool'],
  ['SecurityLabelType', 'single'],
  ['SecurityLabelFileType', 'single'],
  ['SecurityLabelLevel', 'single'],
  ['AppArmor', 'single'],
  ['AddDevice', 'strv'],
  ['SeccompProfile', 'single'],
  ['DropCapability', 'strv'],
  ['AddCapability', 'strv'],
  ['Sysctl', 'strv'],
  ['ReadOnly', 'bool'],
  ['VolatileTmp', 'bool'],
  ['User', 'single'],
  ['Group', 'single'],
  ['UserNS', 'single'],
  ['UIDMap', 'strv'],
  ['GIDMap', 'strv'],
  ['SubUIDMap', 'single'],
  ['SubGIDMap', 'single'],
  ['Volume', 'list'],
  ['AutoUpdate', 'single'],
  ['ExposeHostPort', 'list'],
  ['PublishPort', 'list'],
  ['Environment', 'keyval'],
  ['Label', 'keyval'],
  ['Annotation', 'keyval'],
  ['Mask', 'args'],
  ['Unmask', 'args'],
  ['EnvironmentFile', 'args'],
  ['Secret', 'args'],
  ['Mount', 'args'],
  ...HEALTH_FLAGS.map(([k]) => [k, 'single'] as [string, Kind]),
  ['PodmanArgs', 'args'],
  ['Notify', 'single'],
]);

/** Quadlet keys podsock deliberately does not support, with the reason. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  Rootfs: 'podsock runs containers from images; set Image=',
  Pod: 'podsock runs one container per service; pods are not supported',
  StartWithPod: 'podsock runs one container per service; pods are not supported',
  ServiceName: 'podsock does not generate units; name the .service file instead',
  ReloadCmd: "Quadlet turns it into the unit's ExecReload=, and the unit is yours: put 'ExecReload=podman exec CONTAINER COMMAND' in the .service file",
  ReloadSignal: "Quadlet turns it into the unit's ExecReload=, and the unit is yours: put 'ExecReload=podman kill --signal SIGNAL CONTAINER' in the .service file",
  GlobalArgs: 'podsock does not pass global podman options',
  ContainersConfModule: 'podsock does not pass global podman options',
  RemapUsers: 'it is deprecated in Quadlet; use UserNS=, UIDMap= and GIDMap=',
  RemapUid: 'it is deprecated in Quadlet; use UserNS=, UIDMap= and GIDMap=',
  RemapGid: 'it is deprecated in Quadlet; use UserNS=, UIDMap= and GIDMap=',
  RemapUidSize: 'it is deprecated in Quadlet; use UserNS=, UIDMap= and GIDMap=',
};

// podman's container-name rule (libpod/define: NameRegex).
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// quadlet.go validPortRange, anchored.
const PORT_RANGE = /^\d+(-\d+)?(\/udp|\/tcp)?$/;

/** Whether podman accepts `name` as a container name. */
export function isValidContainerName(name: string): boolean {
  return CONTAINER_NAME.test(name);
}

const TRUE_WORDS = new Set(['1', 'yes', 'y', 'true', 't', 'on']);
const FALSE_WORDS = new Set(['0', 'no', 'n', 'false', 'f', 'off']);

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

/** "did you mean 'Environment'?" for a misspelt key, or a pointer to the documentation. */
function hintFor(key: string): string {
  const known = [...KEYS.keys()];
  const sameCase = known.find((k) => k.toLowerCase() === key.toLowerCase());
  if (sameCase !== undefined) return `did you mean ${q(sameCase)}? (keys are case-sensitive)`;
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of known) {
    const d = levenshtein(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  if (best !== null) return `did you mean ${q(best)}?`;
  return 'see podman-systemd.unit(5) for the [Container] keys; PodmanArgs= passes any other podman run option';
}

/** Reads the section's entries per key and maps them to podman options. */
class Reader {
  private readonly byKey = new Map<string, UnitEntry[]>();
  readonly keyLines: Record<string, number> = {};

  constructor(
    section: UnitSection,
    private readonly ctx: ContainerContext,
  ) {
    for (const raw of section.entries) {
      const kind = KEYS.get(raw.key);
      // Keys read whole are expanded here; word lists word by word where they are split.
      const e = kind === 'single' || kind === 'list' || kind === 'bool' ? { ...raw, value: this.expand(raw, raw.value) } : raw;
      if (!KEYS.has(e.key)) {
        const reason = UNSUPPORTED[e.key];
        if (reason !== undefined) {
          throw this.error(e, `key ${q(e.key)} in section [Container] is not supported by podsock: ${reason}`);
        }
        throw this.error(e, `unknown key ${q(e.key)} in section [Container]: ${hintFor(e.key)}`);
      }
      const list = this.byKey.get(e.key) ?? [];
      list.push(e);
      this.byKey.set(e.key, list);
      this.keyLines[e.key] = e.line;
    }
  }

  error(e: UnitEntry, message: string, cause?: unknown): PodsockError {
    const file = e.file ?? this.ctx.file;
    return new PodsockError('PODSOCK_ERR_CONFIG', `${file}:${e.line}: ${message}`, {
      ...(cause === undefined ? {} : { cause }),
      details: { file, line: e.line, section: 'Container', key: e.key, value: e.value },
    });
  }

  where(e: UnitEntry): string {
    return `${e.file ?? this.ctx.file}:${e.line}: ${e.key}`;
  }

  /** `text` (all or one word of entry e's value) with its specifiers expanded; errors name the entry. */
  expand(e: UnitEntry, text: string): string {
    try {
      return expandSpecifiers(text, this.ctx.specifiers);
    } catch (err) {
      if (!(err instanceof SpecifierError)) throw err;
      throw this.error(e, `${e.key}=${q(e.value)}: ${err.message}`, err);
    }
  }

  entries(key: string): UnitEntry[] {
    return this.byKey.get(key) ?? [];
  }

  last(key: string): UnitEntry | undefined {
    const all = this.entries(key);
    return all[all.length - 1];
  }

  /** Quadlet's Lookup(): the last value, without one pair of surrounding double quotes. */
  single(key: string): string | null {
    const e = this.last(key);
    if (e === undefined) return null;
    const v = e.value;
    return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
  }

  bool(key: string): boolean | null {
    const e = this.last(key);
    if (e === undefined) return null;
    const v = e.value.toLowerCase();
    if (TRUE_WORDS.has(v)) return true;
    if (FALSE_WORDS.has(v)) return false;
    throw this.error(e, `invalid boolean ${q(e.value)} for ${e.key} (allowed: 'yes', 'no', 'true', 'false', 'on', 'off', '1', '0')`);
  }

  /** LookupAllStrv(): words with quotes removed and backslashes kept as they are. */
  strv(key: string): string[] {
    const out: string[] = [];
    for (const e of this.entries(key)) {
      // SplitRetainEscape|SplitUnquote: double the backslashes so splitWords() leaves them alone.
      for (const w of splitWords(e.value.replaceAll('\\', '\\\\'), this.where(e))) out.push(this.expand(e, w));
    }
    return out;
  }

  /** LookupAllArgs(): words split like Exec=, with the entry each came from. */
  args(key: string): Array<{ word: string; raw: string; entry: UnitEntry }> {
    const out: Array<{ word: string; raw: string; entry: UnitEntry }> = [];
    for (const e of this.entries(key)) for (const raw of splitWords(e.value, this.where(e))) out.push({ word: this.expand(e, raw), raw, entry: e });
    return out;
  }

  /** A path relative to the .container file's directory, as Quadlet's getAbsolutePath(). */
  resolve(path: string): string {
    if (isAbsolute(path)) return path;
    const slash = this.ctx.file.lastIndexOf('/');
    return join(slash === -1 ? '.' : this.ctx.file.slice(0, slash) || '/', path);
  }
}

/**
 * Why an image word is refused: `podman run` reads every word before the image as an option (its flag
 * parser stops at the first word that does not start with '-'), so an image '--privileged' would be one.
 */
export const IMAGE_DASH = "starts with '-': podman would read it as an option; expected an image name such as 'docker.io/library/nginx:latest'";

/**
 * Maps a [Container] section to podman run options (see the module comment). Throws PodsockError
 * ('PODSOCK_ERR_CONFIG') naming `file:line` and the key for an unknown or unsupported key, a bad
 * boolean, a bad word list, an invalid container name, Image= given twice, Group= without User=, a
 * bad ExposeHostPort=, an Image= starting with '-' and references to other Quadlet units.
 */
export function containerSectionToArgs(section: UnitSection, ctx: ContainerContext): ContainerSettings {
  const r = new Reader(section, ctx);
  const out: string[] = [];
  const add = (...words: string[]): void => {
    out.push(...words);
  };

  const images = r.entries('Image');
  if (images.length > 1) {
    const [first, second] = images as [UnitEntry, UnitEntry];
    throw r.error(second, `Image= is set again (first on line ${first.line}); give exactly one image, or reset it with an empty 'Image=' first`);
  }
  const image = r.single('Image');
  const imageEntry = images[0];
  if (image !== null && imageEntry !== undefined && (image.endsWith('.image') || image.endsWith('.build'))) {
    throw r.error(imageEntry, `Image=${q(image)} refers to a Quadlet unit; podsock needs an image name such as 'docker.io/library/nginx:latest'`);
  }

  if (image !== null && imageEntry !== undefined && image.startsWith('-')) throw r.error(imageEntry, `Image=${q(image)} ${IMAGE_DASH}`);

  let containerName = r.single('ContainerName') || null;
  const nameEntry = r.last('ContainerName');
  if (containerName !== null && nameEntry !== undefined && !CONTAINER_NAME.test(containerName)) {
    throw r.error(nameEntry, `invalid container name ${q(containerName)} (podman names start with a letter or digit, followed by letters, digits, '_', '.' or '-')`);
  }

  const logDriver = r.single('LogDriver');
  if (logDriver !== null) add('--log-driver', logDriver);
  for (const o of r.strv('LogOpt')) add('--log-opt', o);

  const cgroups = r.single('CgroupsMode');
  if (cgroups !== null) add('--cgroups', cgroups);

  for (const [key, flag] of STRING_FLAGS) {
    const v = r.single(key);
    if (v !== null && v !== '') add(flag, v);
  }
  for (const [key, flag] of LIST_FLAGS) for (const e of r.entries(key)) add(flag, e.value);
  for (const [key, flag] of BOOL_FLAGS) {
    const v = r.bool(key);
    if (v !== null) add(v ? flag : `${flag}=false`);
  }

  for (const e of r.entries('Network')) {
    const name = e.value.split(':')[0] as string;
    if (name.endsWith('.network') || name.endsWith('.container')) {
      throw r.error(e, `Network=${q(e.value)} refers to a Quadlet unit; podsock needs a podman network name or mode (e.g. 'host', 'none', 'mynet')`);
    }
    add('--network', e.value);
  }

  if (r.bool('NoNewPrivileges') === true) add('--security-opt=no-new-privileges');
  if (r.bool('SecurityLabelDisable') === true) add('--security-opt', 'label=disable');
  if (r.bool('SecurityLabelNested') === true) add('--security-opt', 'label=nested');
  const labelType = r.single('SecurityLabelType');
  if (labelType !== null && labelType !== '') add('--security-opt', `label=type:${labelType}`);
  const labelFileType = r.single('SecurityLabelFileType');
  if (labelFileType !== null && labelFileType !== '') add('--security-opt', `label=filetype:${labelFileType}`);
  const labelLevel = r.single('SecurityLabelLevel');
  if (labelLevel !== null && labelLevel !== '') add('--security-opt', `label=level:${labelLevel}`);
  const apparmor = r.single('AppArmor');
  if (apparmor !== null && apparmor !== '') add('--security-opt', `apparmor=${apparmor}`);

  for (let device of r.strv('AddDevice')) {
    // A leading '-' makes the device optional: skipped when the host path does not exist.
    if (device.startsWith('-')) {
      device = device.slice(1);
      if (!ctx.pathExists(device.split(':')[0] as string)) continue;
    }
    add('--device', device);
  }

  const seccomp = r.single('SeccompProfile');
  if (seccomp !== null) add('--security-opt', `seccomp=${seccomp}`);

  for (const cap of r.strv('DropCapability')) add('--cap-drop', cap.toLowerCase());
  for (const cap of r.strv('AddCapability')) add('--cap-add', cap.toLowerCase());
  for (const s of r.strv('Sysctl')) add('--sysctl', s);

  const readOnly = r.bool('ReadOnly');
  if (readOnly !== null) add(readOnly ? '--read-only' : '--read-only=false');
  if (r.bool('VolatileTmp') === true && readOnly !== true) add('--tmpfs', '/tmp:rw,size=512M,mode=1777');

  const user = r.single('User');
  const group = r.single('Group');
  const groupEntry = r.last('Group');
  if ((user === null || user === '') && group !== null && group !== '' && groupEntry !== undefined) {
    throw r.error(groupEntry, 'Group= is set without User=; podman takes the group as --user USER:GROUP');
  }
  if (user !== null && user !== '') add('--user', group !== null && group !== '' ? `${user}:${group}` : user);

  const userns = r.single('UserNS');
  if (userns !== null && userns !== '') add('--userns', userns);
  for (const m of r.strv('UIDMap')) add('--uidmap', m);
  for (const m of r.strv('GIDMap')) add('--gidmap', m);
  const subuid = r.single('SubUIDMap');
  if (subuid !== null && subuid !== '') add('--subuidname', subuid);
  const subgid = r.single('SubGIDMap');
  if (subgid !== null && subgid !== '') add('--subgidname', subgid);

  for (const e of r.entries('Volume')) {
    // quadlet.go addVolumes(): SOURCE:DEST[:OPTIONS], or just DEST.
    const parts = e.value.split(':');
    if (parts.length < 2) {
      add('-v', e.value);
      continue;
    }
    let source = parts[0] as string;
    const rest = parts.slice(1).join(':');
    if (source.endsWith('.volume')) {
      throw r.error(e, `Volume=${q(e.value)} refers to a Quadlet .volume unit; use a podman volume name or a host path`);
    }
    if (source.startsWith('.')) source = r.resolve(source);
    add('-v', `${source}:${rest}`);
  }

  const autoUpdate = autoUpdateOf(r, image);
  if (autoUpdate !== null) add('--label', `io.containers.autoupdate=${r.single('AutoUpdate') ?? ''}`);

  for (const e of r.entries('ExposeHostPort')) {
    if (!PORT_RANGE.test(e.value)) throw r.error(e, `invalid port ${q(e.value)} for ExposeHostPort= (expected PORT, PORT-PORT, optionally with '/tcp' or '/udp')`);
    add('--expose', e.value);
  }
  for (const e of r.entries('PublishPort')) add('--publish', e.value);

  for (const e of r.entries('Environment')) {
    for (const pair of splitEnvironment(e.value, r.where(e))) add('--env', r.expand(e, `${pair.name}=${pair.value}`));
  }
  for (const [key, flag] of [['Label', '--label'], ['Annotation', '--annotation']] as const) {
    // Quadlet accepts a bare word here (`--label foo`), unlike Environment=.
    for (const { word } of r.args(key)) add(flag, word);
  }

  for (const { word } of r.args('Mask')) add('--security-opt', `mask=${word}`);
  for (const { word } of r.args('Unmask')) add('--security-opt', `unmask=${word}`);
  // quadlet.go getAbsolutePath(): a path that starts with a specifier is not resolved against the file.
  for (const { word, raw } of r.args('EnvironmentFile')) add('--env-file', /^%[^%]/.test(raw) ? word : r.resolve(word));
  for (const { word } of r.args('Secret')) add('--secret', word);
  for (const { word } of r.args('Mount')) add('--mount', resolveMountSource(word, r));

  for (const [key, suffix] of HEALTH_FLAGS) {
    const v = r.single(key);
    if (v !== null && v !== '') add(`--health-${suffix}`, v);
  }

  const podmanArgs = r.args('PodmanArgs');
  if (podmanArgs.length > 0) {
    const first = podmanArgs[0] as { entry: UnitEntry };
    const lastEntry = r.last('PodmanArgs') as UnitEntry;
    const where = podmanArgs.every((a) => a.entry === lastEntry) ? r.where(lastEntry) : `${ctx.file}:${first.entry.line}-${lastEntry.line}: PodmanArgs`;
    const parsed = parsePodmanOptions(
      podmanArgs.map((a) => a.word),
      where,
    );
    out.push(...parsed.options);
    if (parsed.name !== null) {
      if (!CONTAINER_NAME.test(parsed.name)) {
        throw new PodsockError('PODSOCK_ERR_CONFIG', `${where}: invalid container name ${q(parsed.name)} in '--name'`, {
          details: { file: ctx.file, key: 'PodmanArgs', value: parsed.name },
        });
      }
      containerName = parsed.name;
    }
  }

  const execEntry = r.last('Exec');
  const command = execEntry === undefined ? null : splitWords(execEntry.value, r.where(execEntry)).map((w) => r.expand(execEntry, w));

  return { image: image || null, command, containerName, options: out, keyLines: r.keyLines, notify: notifyOf(r), autoUpdate };
}

/**
 * AutoUpdate= (podman-systemd.unit(5)): the policies podman's pkg/autoupdate LookupPolicy() knows.
 * 'disabled' and an empty value add no label. podman refuses 'registry' for an image that is not a
 * fully-qualified reference (libpod/container_validate.go, validateAutoUpdateImageReference()) only
 * when the container is created; the check here names the file and line instead.
 */
function autoUpdateOf(r: Reader, image: string | null): AutoUpdatePolicy | null {
  const e = r.last('AutoUpdate');
  const v = r.single('AutoUpdate');
  if (e === undefined || v === null || v === '' || v === 'disabled') return null;
  if (v !== 'registry' && v !== 'image' && v !== 'local') {
    throw r.error(e, `invalid value ${q(v)} for AutoUpdate= (allowed: 'registry', 'local', 'disabled'; 'image' is podman's older name for 'registry')`);
  }
  if (v !== 'local' && image !== null && image !== '' && !isFullyQualified(image)) {
    throw r.error(e, `AutoUpdate=${v} needs a fully-qualified image (registry, name and tag, such as 'quay.io/podman/stable:latest'), got Image=${q(image)}; podman refuses a short name here`);
  }
  return v === 'local' ? 'local' : 'registry';
}

/** Whether `image` names its registry: the first component has a '.' or ':' or is 'localhost' (containers/image docker/reference, splitDockerDomain()). */
function isFullyQualified(image: string): boolean {
  const ref = image.startsWith('docker://') ? image.slice('docker://'.length) : image;
  const slash = ref.indexOf('/');
  if (slash === -1) return false;
  const domain = ref.slice(0, slash);
  return domain === 'localhost' || domain.includes('.') || domain.includes(':');
}

/**
 * Notify= (podman-systemd.unit(5)): 'healthy' in any case (podman 5.1) or a boolean. podsock relays readiness
 * itself, so it becomes the [Podsock] Ready= it stands for (load.ts): true is Ready=notify, healthy
 * is Ready=healthy, false is the default.
 */
function notifyOf(r: Reader): 'healthy' | 'notify' | null {
  const e = r.last('Notify');
  if (e === undefined) return null;
  const v = e.value.toLowerCase();
  if (v === 'healthy') return 'healthy';
  if (TRUE_WORDS.has(v)) return 'notify';
  if (FALSE_WORDS.has(v)) return null;
  throw r.error(e, `invalid value ${q(e.value)} for Notify= (allowed: 'healthy' or a boolean: 'yes', 'no', 'true', 'false', 'on', 'off', '1', '0')`);
}

/** Mount=type=bind,source=./data,... : resolve a relative source like Quadlet's resolveContainerMountParams(). */
function resolveMountSource(mount: string, r: Reader): string {
  const tokens = mount.split(',');
  let changed = false;
  const out = tokens.map((t) => {
    const eq = t.indexOf('=');
    const key = eq === -1 ? t : t.slice(0, eq);
    const value = eq === -1 ? '' : t.slice(eq + 1);
    if ((key === 'source' || key === 'src') && value.startsWith('.')) {
      changed = true;
      return `${key}=${r.resolve(value)}`;
    }
    return t;
  });
  return changed ? out.join(',') : mount;
}
