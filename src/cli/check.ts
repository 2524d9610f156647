/**
 * `podsock check NAME [RUN OPTIONS] [--unit FILE] [--strict] [-- PODMAN_RUN_ARGS...]`: load and
 * validate NAME's configuration exactly as `podsock run` would (configFromArgs), print the `podman
 * run` command run would execute, and warn about mistakes that load fine (src/check/*).
 *
 * Output: the command on stdout, shell-quoted; warnings one per line on stderr, then a summary.
 * Exit status: 0 valid (warnings allowed), 1 with --strict when there were warnings, and the
 * catalogue's status when the configuration is invalid (78) or the command line is (64): those
 * errors are thrown and reported by main.ts.
 *
 * The printed command uses placeholders for what exists only while running: the cidfile and notify
 * directory under the runtime directory (runtimeDirFor(); `run` creates the notify directory with a
 * random suffix), the LISTEN_* environment, and in proxy mode the loopback host port (chosen at start).
 */
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configWarnings } from '../check/config-rules.js';
import { proxyExposure, socketCandidates } from '../check/exposure-rules.js';
import { healthyWithoutCmd } from '../check/health-rules.js';
import { idleShorterThanSeenStart } from '../check/history-rules.js';
import { imageWarnings } from '../check/image-rules.js';
import { launcherRule, startTimeoutRule } from '../check/unit-start-rules.js';
import { madeFrom, notifyOverridden, unitForSpecifiers } from '../check/quadlet-rules.js';
import { unitCandidates, unitWarnings } from '../check/unit-rules.js';
import { formatWarning, type CheckWarning } from '../check/warning.js';
import type { ServiceConfig } from '../config/load.js';
import { MAX_UNIT_FILE_BYTES, parseUnitBytes, type UnitFile } from '../config/unit-syntax.js';
import { PodsockError, isPodsockError, q } from '../errors.js';
import { netnsBackendPossible } from '../runtime/container-netns.js';
import { detachAvailable, imageExists, imageHasHealthcheck, resolvePodman, type Podman } from '../runtime/podman.js';
import { podmanRunCommand, shellQuote } from '../runtime/podman-argv.js';
import { scrubbedEnv } from '../sd/listen-fds.js';
import { NOTIFY_SOCKET_NAME } from '../sd/notify-server.js';
import { parseArgs, type FlagSpec } from './args.js';
import { KEY_OF_FLAG } from './podsock-flags.js';
import { parseListenAddress } from '../listeners/listen-address.js';
import { runtimeDirFor, stateDirFor } from '../paths.js';
import { readStatusFile, statusFileFor } from '../status/status-file.js';
import { RUN_FLAGS, configFromArgs } from './run.js';

/** check's own options; every `run` option is accepted too. */
const CHECK_FLAGS: Record<string, FlagSpec> = {
  unit: { value: true },
  strict: { value: false },
};

export interface CheckInput {
  argv: string[];
  env: NodeJS.ProcessEnv;
  uid: number;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/** Separates check's own options from the `run` options, keeping everything else in order. */
function splitOwnFlags(argv: readonly string[]): { rest: string[]; unit: string | null; strict: boolean; overridden: Set<string>; name: string | null } {
  const named = nameFromConfig(argv);
  if (named !== null) return splitOwnFlags([named, ...argv]);
  // Validate the whole command line once with both sets, for the usual messages.
  const all = parseArgs(argv, { ...RUN_FLAGS, ...CHECK_FLAGS }, 'check');
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const long = a.startsWith('--') ? a.slice(2).split('=')[0] : undefined;
    if (long === 'unit' && !a.includes('=')) {
      i++;
      continue;
    }
    if (long === 'unit' || long === 'strict') continue;
    rest.push(a);
    // A run option's separate value stays with it (it may look like an option of check's).
    if (long !== undefined && !a.includes('=') && RUN_FLAGS[long]?.value === true && i + 1 < argv.length) rest.push(argv[++i] as string);
  }
  const overridden = new Set([...all.flags.keys()].flatMap((f) => (KEY_OF_FLAG[f] === undefined ? [] : [`Podsock.${KEY_OF_FLAG[f]}`])));
  return { rest, unit: all.flags.get('unit')?.[0] ?? null, strict: all.flags.has('strict'), overridden, name: all.positionals.length === 1 ? (all.positionals[0] as string) : null };
}

/**
 * `check --config FILE` without NAME: NAME from FILE's name (NAME.container), or null when a NAME is
 * given or there is no --config. A FILE not named NAME.container is PODSOCK_ERR_USAGE.
 */
export function nameFromConfig(argv: readonly string[]): string | null {
  const all = parseArgs(argv, { ...RUN_FLAGS, ...CHECK_FLAGS }, 'check');
  const config = all.flags.get('config')?.[0];
  if (all.positionals.length > 0 || config === undefined) return null;
  const base = basename(config);
  if (!base.endsWith('.container') || base === '.container') {
    throw new PodsockError('PODSOCK_ERR_USAGE', `podsock check: cannot take the service NAME from '--config' ${q(config)}: expected a file named NAME.container; give NAME too (see 'podsock check --help')`);
  }
  return base.slice(0, -'.container'.length);
}

/** podsock-launch built beside this podsock (as generate.ts finds it), or null. */
function builtLauncher(): string | null {
  const path = fileURLToPath(new URL('../../build/Release/podsock-launch', import.meta.url));
  try {
    accessSync(path, fsConstants.X_OK);
    return path;
  } catch {
    return null;
  }
}

/** What podsock recorded about the service's earlier activations (status/status-file.ts), as check warnings. */
function historyWarnings(cfg: ServiceConfig, env: NodeJS.ProcessEnv, uid: number): CheckWarning[] {
  const file = statusFileFor(stateDirFor(env, uid), cfg.name);
  try {
    return idleShorterThanSeenStart(cfg, readStatusFile(file), file);
  } catch (err) {
    if (!isPodsockError(err)) throw err;
    return [{ code: 'status-unreadable', message: `${err.message}, ignoring`, file }];
  }
}

function readUnit(path: string, explicit: boolean, cfg: ServiceConfig): { warnings: CheckWarning[] } {
  let bytes: Buffer;
  try {
    const size = statSync(path).size;
    if (size > MAX_UNIT_FILE_BYTES) return { warnings: [{ code: 'unit-unreadable', message: `larger than ${MAX_UNIT_FILE_BYTES} bytes, not checked`, file: path }] };
    bytes = readFileSync(path);
  } catch (err) {
    if (explicit) {
      throw new PodsockError('PODSOCK_ERR_USAGE', `podsock check: cannot read '--unit' ${q(path)}: ${(err as Error).message}`, { cause: err });
    }
    return { warnings: [{ code: 'unit-unreadable', message: `cannot read it: ${(err as Error).message}, ignoring`, file: path }] };
  }
  try {
    const unit = parseUnitBytes(bytes, path);
    return { warnings: [...unitWarnings(unit), ...startTimeoutRule(unit, cfg), ...launcherRule(unit, builtLauncher())] };
  } catch (err) {
    if (!isPodsockError(err)) throw err;
    return { warnings: [{ code: 'unit-unreadable', message: `cannot parse it (${err.message}), ignoring`, file: path }] };
  }
}

/** The socket unit parsed, or null when it cannot be read or parsed (the service unit's rules report such files). */
function readSocketUnit(path: string): UnitFile | null {
  try {
    if (statSync(path).size > MAX_UNIT_FILE_BYTES) return null;
    return parseUnitBytes(readFileSync(path), path);
  } catch {
    return null;
  }
}

async function imageFacts(cfg: ServiceConfig, env: NodeJS.ProcessEnv): Promise<{ podman: Podman | null; warnings: CheckWarning[] }> {
  let podman: Podman;
  try {
    podman = resolvePodman(scrubbedEnv(env));
  } catch (err) {
    return { podman: null, warnings: [...imageWarnings(cfg, null, (err as Error).message), ...healthyWithoutCmd(cfg, null)] };
  }
  const present = await imageExists(podman, cfg.image);
  // Ready=healthy without HealthCmd=: only the image's own HEALTHCHECK can make it ready.
  const needsImageCheck = cfg.ready.kind === 'healthy' && !cfg.hasHealthCheck;
  const imageCheck = needsImageCheck && present ? await imageHasHealthcheck(podman, cfg.image) : null;
  return { podman, warnings: [...imageWarnings(cfg, present), ...healthyWithoutCmd(cfg, imageCheck)] };
}

/** Check the configuration; resolves with the exit status (see the module comment). */
export async function checkCommand(input: CheckInput): Promise<number> {
  const out = input.stdout ?? ((s: string) => void process.stdout.write(s));
  const err = input.stderr ?? ((s: string) => void process.stderr.write(s));
  const own = splitOwnFlags(input.argv);
  // %-specifiers as the unit that would run NAME gives them (the unit file checked, else NAME.service).
  const named = own.name === null ? null : (own.unit ?? unitCandidates(own.name, input.env, input.uid).find((p) => existsSync(p)) ?? null);
  const loaded = configFromArgs(own.rest, input.env, 'check', own.name === null ? undefined : unitForSpecifiers(own.name, named));
  const { listen } = loaded;
  // A flag wins over the file: then the file's line is not where the value came from.
  const keyLines = Object.fromEntries(Object.entries(loaded.cfg.keyLines).filter(([k]) => !own.overridden.has(k)));
  const cfg: ServiceConfig = { ...loaded.cfg, keyLines };
  const names = listen.map((raw) => parseListenAddress(raw).name);

  const warnings: CheckWarning[] = [...configWarnings(cfg), ...notifyOverridden(cfg)];
  const image = await imageFacts(cfg, input.env);
  warnings.push(...image.warnings);

  let unitFile = own.unit;
  if (unitFile === null) unitFile = unitCandidates(cfg.name, input.env, input.uid).find((p) => existsSync(p)) ?? null;
  if (unitFile !== null) warnings.push(...readUnit(unitFile, own.unit !== null, cfg).warnings);
  warnings.push(...historyWarnings(cfg, input.env, input.uid));

  // The socket unit beside the service unit (or where systemd would find it): its access control.
  const socketFile = (unitFile === null ? null : [unitFile.replace(/\.service$/, '.socket')].find((p) => p !== unitFile && existsSync(p))) ??
    socketCandidates(cfg.name, input.env, input.uid).find((p) => existsSync(p)) ?? null;
  warnings.push(...proxyExposure(cfg, { rootless: input.uid !== 0, socket: socketFile === null ? null : readSocketUnit(socketFile) }));

  const runtimeDir = runtimeDirFor(input.env, input.uid);
  const direct = cfg.mode === 'proxy' && netnsBackendPossible({ rootless: input.uid !== 0, detached: detachAvailable() });
  const cmd = podmanRunCommand(cfg, {
    cidfile: join(runtimeDir, `${cfg.name}.cid`),
    notifyDir: join(runtimeDir, 'podsock-XXXXXX'),
    notifySocketName: NOTIFY_SOCKET_NAME,
    podmanNotifySocket: join(runtimeDir, 'podsock-YYYYYY', NOTIFY_SOCKET_NAME),
    handover: cfg.mode === 'handover' ? { names } : null,
    publish: cfg.mode === 'proxy' && !direct ? cfg.backends.map((b) => ({ hostPort: 0, containerPort: b.port })) : [],
    conmonPidfile: detachAvailable() ? join(runtimeDir, `${cfg.name}.conmon.pid`) : null,
    pidfile: direct ? join(runtimeDir, `${cfg.name}.pid`) : null,
    unit: null,
    selinux: existsSync('/sys/fs/selinux/enforce'),
  });
  out(`${shellQuote([image.podman?.binary ?? 'podman', ...cmd.args])}\n`);

  for (const w of warnings) err(`${formatWarning(w)}\n`);
  const source = cfg.source === null ? "arguments after '--'" : cfg.files.length > 1 ? `${q(cfg.source)} and its drop-ins` : q(cfg.source);
  if (cfg.files.length > 1) err(`podsock check: configuration made from ${madeFrom(cfg.files)}\n`);
  const unitNote = unitFile === null ? 'no unit file found' : `unit ${q(unitFile)}`;
  err(`podsock check: ${q(cfg.name)} is valid (${source}; ${unitNote}); ${warnings.length === 0 ? 'no warnings' : `${warnings.length} warning${warnings.length === 1 ? '' : 's'}`}\n`);
  return own.strict && warnings.length > 0 ? 1 : 0;
}
