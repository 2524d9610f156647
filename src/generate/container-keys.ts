/**
 * `podman run` options back to Quadlet [Container] keys: the reverse of container-section.ts, for
 * the options where a key gives back exactly the same option. Everything else is written as
 * PodmanArgs=, which passes any option through unchanged.
 *
 * An option is mapped only when every one of its occurrences can be, so the options of one kind keep
 * their order (podman lets later ones win). Across kinds the order becomes Quadlet's, which podman
 * does not care about. A single-value key is used only for an option given once: a key holds one
 * value, podman would see only the last one, and the argv would differ.
 *
 * Pure.
 */
import type { PodmanFlag } from '../config/podman-args.js';
import { isLiteralValue, quoteWord } from './unit-quote.js';

type Kind =
  /** Key=value, value as written (Quadlet Lookup()). */
  | 'single'
  /** Key=value per occurrence, value as written (LookupAll()). */
  | 'list'
  /** Key=true for `--flag`, Key=false for `--flag=false` (BOOL_FLAGS). */
  | 'bool'
  /** Key=word per occurrence, quoted as a word (LookupAllArgs()). */
  | 'args'
  /** Key=word per occurrence, plain words only (LookupAllStrv(), which keeps backslashes). */
  | 'strv';

interface Mapping {
  key: string;
  kind: Kind;
  /** Extra condition on a value for the key to give it back unchanged. */
  accepts?: (value: string) => boolean;
}

const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;
// quadlet.go validPortRange, anchored (ExposeHostPort= rejects anything else).
const PORT_RANGE = /^\d+(-\d+)?(\/udp|\/tcp)?$/;

/** Canonical podman option name (no dashes) to its [Container] key. */
const MAPPINGS: Readonly<Record<string, Mapping>> = {
  tz: { key: 'Timezone', kind: 'single' },
  'pids-limit': { key: 'PidsLimit', kind: 'single' },
  'shm-size': { key: 'ShmSize', kind: 'single' },
  entrypoint: { key: 'Entrypoint', kind: 'single' },
  workdir: { key: 'WorkingDir', kind: 'single' },
  ip: { key: 'IP', kind: 'single' },
  ip6: { key: 'IP6', kind: 'single' },
  hostname: { key: 'HostName', kind: 'single' },
  'stop-signal': { key: 'StopSignal', kind: 'single' },
  'stop-timeout': { key: 'StopTimeout', kind: 'single' },
  pull: { key: 'Pull', kind: 'single' },
  memory: { key: 'Memory', kind: 'single' },
  'log-driver': { key: 'LogDriver', kind: 'single' },
  cgroups: { key: 'CgroupsMode', kind: 'single' },
  user: { key: 'User', kind: 'single' },
  userns: { key: 'UserNS', kind: 'single' },
  'health-cmd': { key: 'HealthCmd', kind: 'single' },
  'health-interval': { key: 'HealthInterval', kind: 'single' },
  'health-on-failure': { key: 'HealthOnFailure', kind: 'single' },
  'health-retries': { key: 'HealthRetries', kind: 'single' },
  'health-start-period': { key: 'HealthStartPeriod', kind: 'single' },
  'health-timeout': { key: 'HealthTimeout', kind: 'single' },
  'network-alias': { key: 'NetworkAlias', kind: 'list' },
  ulimit: { key: 'Ulimit', kind: 'list' },
  dns: { key: 'DNS', kind: 'list' },
  'dns-option': { key: 'DNSOption', kind: 'list' },
  'dns-search': { key: 'DNSSearch', kind: 'list' },
  'group-add': { key: 'GroupAdd', kind: 'list' },
  'add-host': { key: 'AddHost', kind: 'list' },
  tmpfs: { key: 'Tmpfs', kind: 'list' },
  // A value naming a Quadlet unit is refused by the reader; PodmanArgs= passes it on.
  network: { key: 'Network', kind: 'list', accepts: (v) => !/\.(network|container)$/.test(v.split(':')[0] as string) },
  publish: { key: 'PublishPort', kind: 'list' },
  expose: { key: 'ExposeHostPort', kind: 'list', accepts: (v) => PORT_RANGE.test(v) },
  // Relative sources are resolved against the file's directory, and *.volume names a Quadlet unit.
  volume: {
    key: 'Volume',
    kind: 'list',
    accepts: (v) => {
      const source = v.split(':')[0] as string;
      return !v.includes(':') || (!source.startsWith('.') && !source.endsWith('.volume'));
    },
  },
  init: { key: 'RunInit', kind: 'bool' },
  'env-host': { key: 'EnvironmentHost', kind: 'bool' },
  'read-only-tmpfs': { key: 'ReadOnlyTmpfs', kind: 'bool' },
  'read-only': { key: 'ReadOnly', kind: 'bool' },
  label: { key: 'Label', kind: 'args' },
  annotation: { key: 'Annotation', kind: 'args' },
  secret: { key: 'Secret', kind: 'args' },
  // Environment= needs NAME=VALUE; `--env NAME` (take it from podman's environment) has no key.
  env: { key: 'Environment', kind: 'args', accepts: (v) => v.indexOf('=') > 0 },
  'env-file': { key: 'EnvironmentFile', kind: 'args', accepts: (v) => v.startsWith('/') },
  mount: { key: 'Mount', kind: 'args', accepts: (v) => !/(^|,)(source|src)=\./.test(v) },
  'cap-add': { key: 'AddCapability', kind: 'strv', accepts: (v) => v === v.toLowerCase() },
  'cap-drop': { key: 'DropCapability', kind: 'strv', accepts: (v) => v === v.toLowerCase() },
  sysctl: { key: 'Sysctl', kind: 'strv' },
  'log-opt': { key: 'LogOpt', kind: 'strv' },
  device: { key: 'AddDevice', kind: 'strv', accepts: (v) => !v.startsWith('-') },
};

/** One `Key=value` line of the [Container] section, value already written as it must appear. */
export interface ContainerLine {
  key: string;
  value: string;
}

function lineFor(m: Mapping, f: PodmanFlag): ContainerLine | null {
  const v = f.value;
  if (m.kind === 'bool') {
    if (v === null) return { key: m.key, value: 'true' };
    return v === 'false' ? { key: m.key, value: 'false' } : null;
  }
  if (v === null || (m.accepts !== undefined && !m.accepts(v))) return null;
  switch (m.kind) {
    case 'single':
    case 'list':
      return isLiteralValue(v) ? { key: m.key, value: v } : null;
    case 'args':
      return v === '' ? null : { key: m.key, value: quoteWord(v) };
    case 'strv':
      return PLAIN_WORD.test(v) ? { key: m.key, value: v } : null;
  }
}

/**
 * Splits parsed podman options into [Container] key lines and the options left for PodmanArgs=
 * (each as one argv word in `--name=value` or `--name` form). `--name` is not expected here
 * (parsePodmanRunArgs() takes it out).
 */
export function optionsToKeys(flags: readonly PodmanFlag[]): { lines: ContainerLine[]; podmanArgs: string[] } {
  const count = new Map<string, number>();
  for (const f of flags) count.set(f.name, (count.get(f.name) ?? 0) + 1);

  const mapped = new Map<string, ContainerLine[] | null>();
  for (const f of flags) {
    if (mapped.get(f.name) === null) continue;
    const m = MAPPINGS[f.name];
    const line = m === undefined || (m.kind === 'single' && count.get(f.name) !== 1) ? null : lineFor(m, f);
    if (line === null) mapped.set(f.name, null);
    else mapped.set(f.name, [...(mapped.get(f.name) ?? []), line]);
  }

  const lines: ContainerLine[] = [];
  const podmanArgs: string[] = [];
  const emitted = new Set<string>();
  for (const f of flags) {
    const own = mapped.get(f.name);
    if (own === null || own === undefined) {
      podmanArgs.push(f.value === null ? `--${f.name}` : `--${f.name}=${f.value}`);
    } else if (!emitted.has(f.name)) {
      emitted.add(f.name);
      lines.push(...own);
    }
  }
  return { lines, podmanArgs };
}
