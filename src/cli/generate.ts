/**
 * `podsock generate NAME --listen ADDR... [OPTIONS] [-- PODMAN_RUN_ARGS...]`: write (or print)
 * NAME.socket, NAME.service and NAME.container for a socket-activated container, then say where they
 * go and which systemctl commands to run. Like `podman generate systemd --new`, for socket
 * activation. The unit texts come from the pure builders in src/generate/; this file gathers the facts
 * they need (paths, uid, version) and does the I/O.
 */
import { fileURLToPath } from 'node:url';
import { accessSync, constants as fsConstants, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { containerSectionToArgs } from '../config/container-section.js';
import { assertSafeName } from '../config/find.js';
import { defaultContainerName } from '../config/load.js';
import { parsePodmanRunArgs } from '../config/podman-args.js';
import { resolvePodsockSettings } from '../config/podsock-section.js';
import { specifierContext } from '../config/specifier-context.js';
import { findSection, parseUnitText } from '../config/unit-syntax.js';
import { PodsockError, q } from '../errors.js';
import { containerFileText } from '../generate/container-file.js';
import { layoutFor, nextSteps, podsockCommand, type Scope, type SelfFacts } from '../generate/layout.js';
import { serviceUnit } from '../generate/service-unit.js';
import { socketUnits, type UnitText } from '../generate/socket-units.js';
import { resolvePodman } from '../runtime/podman.js';
import { shellQuote } from '../runtime/podman-argv.js';
import { scrubbedEnv } from '../sd/listen-fds.js';
import { flag, parseArgs, type FlagSpec } from './args.js';
import { PODSOCK_FLAGS, podsockFlags } from './podsock-flags.js';
import { parseListenAddress } from '../listeners/listen-address.js';

export const GENERATE_FLAGS: Record<string, FlagSpec> = {
  listen: { value: true, repeat: true },
  ...PODSOCK_FLAGS,
  user: { value: false },
  system: { value: false },
  output: { value: true },
  'config-dir': { value: true },
  template: { value: false },
  env: { value: true, repeat: true },
  force: { value: false },
  help: { value: false, short: 'h' },
};

/** Most `--env` assignments; each becomes one Environment= line. */
const MAX_ENV = 64;

export interface GenerateInput {
  argv: string[];
  env: NodeJS.ProcessEnv;
  uid: number;
  /** process.argv[1], process.execPath. */
  script: string;
  execPath: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function usage(what: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_USAGE', `podsock generate: ${what} (see 'podsock generate --help')`);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function selfFacts(input: GenerateInput): SelfFacts {
  const script = realpathSync(input.script);
  const dirs = (input.env.PATH ?? '').split(delimiter).filter((d) => isAbsolute(d));
  const onPath = dirs.map((d) => join(d, 'podsock')).find(isExecutable) ?? null;
  let onPathTarget: string | null = null;
  if (onPath !== null) {
    try {
      onPathTarget = realpathSync(onPath);
    } catch {
      // A dangling link is not this podsock.
    }
  }
  const launcher = fileURLToPath(new URL('../../build/Release/podsock-launch', import.meta.url));
  return { script, execPath: input.execPath, onPath, onPathTarget, launcher: isExecutable(launcher) ? launcher : null };
}

function podmanPath(env: NodeJS.ProcessEnv): string {
  try {
    return resolvePodman(scrubbedEnv(env)).binary;
  } catch {
    // Not installed here (yet): Debian's and Fedora's path. The unit is for the target machine anyway.
    return '/usr/bin/podman';
  }
}

function parseEnvPairs(values: readonly string[]): Array<[string, string]> {
  if (values.length > MAX_ENV) throw usage(`at most ${MAX_ENV} '--env' options`);
  return values.map((v) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(v);
    if (m === null) throw usage(`invalid '--env' ${q(v)} (expected NAME=VALUE)`);
    return [m[1] as string, m[2] as string];
  });
}

/** Generate the units; resolves with the exit status. */
export function generateCommand(input: GenerateInput): number {
  const p = parseArgs(input.argv, GENERATE_FLAGS, 'generate');
  if (p.positionals.length !== 1) {
    throw usage(`expected exactly one service NAME, got ${p.positionals.length === 0 ? 'none' : p.positionals.map((x) => q(x)).join(' ')}`);
  }
  const name = p.positionals[0] as string;
  assertSafeName(name);
  if (name.includes('@')) throw usage(`service name ${q(name)} contains '@', which systemd reads as a template instance`);

  const listenRaw = p.flags.get('listen') ?? [];
  if (listenRaw.length === 0) throw usage("at least one '--listen ADDR' is required: the address systemd listens on");
  const listens = listenRaw.map((raw) => ({ raw, spec: parseListenAddress(raw) }));

  if (flag(p, 'user') !== undefined && flag(p, 'system') !== undefined) throw usage("'--user' and '--system' exclude each other");
  const scope: Scope = flag(p, 'system') !== undefined ? 'system' : flag(p, 'user') !== undefined ? 'user' : input.uid === 0 ? 'system' : 'user';
  const template = flag(p, 'template') !== undefined;
  const configDirFlag = flag(p, 'config-dir');
  if (configDirFlag !== undefined && !isAbsolute(configDirFlag)) throw usage(`'--config-dir' must be an absolute path, got ${q(configDirFlag)}`);
  const envPairs = parseEnvPairs(p.flags.get('env') ?? []);
  if (template && (configDirFlag !== undefined || envPairs.length > 0)) {
    throw usage("'--template' uses podsock@.service as it is: '--config-dir' and '--env' need a generated NAME.service");
  }
  if (p.passthrough.length === 0) throw usage("no container: give podman run arguments after '--', e.g. '-- docker.io/library/nginx:latest'");

  const flags = podsockFlags(p);
  // Ready=tcp and http probe over TCP: a proxy service with only udp: addresses could never become
  // ready with them (run refuses it). Without --ready it is ready once the container runs; the UDP
  // engine resends what the app refuses while it binds.
  const udpOnly = listens.every((l) => l.spec.kind === 'udp');
  if (udpOnly && flags.Mode === 'proxy') {
    if (flags.Ready === undefined) flags.Ready = 'started';
    else if (/^(tcp|http)(:|$)/.test(flags.Ready)) {
      throw usage(`'--ready ${flags.Ready}' probes the backend over TCP, but every '--listen' is a udp: address: use '--ready notify', 'healthy' or 'started'`);
    }
  }
  const settings = resolvePodsockSettings(undefined, null, flags);
  const containerName = parsePodmanRunArgs(p.passthrough, "arguments after '--'").name ?? defaultContainerName(name);

  const header = [`Generated by podsock ${version()}: ${shellQuote(['podsock', 'generate', ...input.argv]).replace(/[\r\n]/g, ' ')}`];
  const layout = layoutFor(scope, name, configDirFlag ?? null);
  const serviceName = template ? `podsock@${name}.service` : `${name}.service`;
  const sockets = socketUnits({ name, listens, service: serviceName, header });
  const files: UnitText[] = [...sockets];
  if (!template) {
    files.push(
      serviceUnit({
        name,
        podsock: podsockCommand(selfFacts(input)),
        podman: podmanPath(input.env),
        containerName,
        configInUnit: layout.configInUnit,
        sockets: sockets.map((s) => s.file),
        startTimeoutMs: settings.startTimeoutMs,
        stopTimeoutMs: settings.stopTimeoutMs,
        env: envPairs,
        header,
      }),
    );
  }
  const container: UnitText = {
    file: `${name}.container`,
    text: containerFileText({
      name,
      podmanArgs: p.passthrough,
      settings,
      header: [
        ...header,
        `What podsock runs for the service ${q(name)}; install it as ${layout.configDir}/${name}.container.`,
        'Quadlet syntax (podman-systemd.unit(5)); [Podsock] holds the settings of podsock itself.',
      ],
    }),
  };
  selfCheck(container);
  files.push(container);

  const outputFlag = flag(p, 'output');
  const outputDir = outputFlag === undefined ? undefined : resolve(outputFlag);
  const steps = nextSteps({ name, layout, units: files.filter((f) => f !== container).map((f) => f.file), outputDir: outputDir ?? null, template, root: input.uid === 0 });
  if (outputDir === undefined) {
    input.stdout(files.map((f) => `# ---- ${f.file} ----\n${f.text}`).join('\n'));
    input.stderr(steps);
    return 0;
  }
  mkdirSync(outputDir, { recursive: true });
  for (const f of files) {
    const path = resolve(outputDir, f.file);
    try {
      writeFileSync(path, f.text, { flag: flag(p, 'force') !== undefined ? 'w' : 'wx', mode: 0o644 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new PodsockError(
        'PODSOCK_ERR_USAGE',
        code === 'EEXIST' ? `podsock generate: ${q(path)} exists; use '--force' to overwrite it` : `podsock generate: cannot write ${q(path)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    input.stdout(`Wrote ${path}\n`);
  }
  input.stdout(`\n${steps}`);
  return 0;
}

/** The generated NAME.container must load: a failure here is a bug in the generator, not the user's. */
function selfCheck(container: UnitText): void {
  try {
    const unit = parseUnitText(container.text, container.file);
    const section = findSection(unit, 'Container');
    if (section !== undefined) containerSectionToArgs(section, { file: `/${container.file}`, pathExists: () => true, specifiers: specifierContext({ env: {}, uid: 0, fallbackUnit: 'generate.service' }) });
    resolvePodsockSettings(findSection(unit, 'Podsock'), container.file, {});
  } catch (err) {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `podsock generate: the generated ${container.file} does not load: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
