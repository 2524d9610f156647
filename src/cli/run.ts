/**
 * `podsock run NAME [OPTIONS] [-- PODMAN_RUN_ARGS...]`: validate everything at the edge (command line,
 * configuration, sockets, environment), then hand a fully built supervisor the process's life.
 * The only module besides main.ts that touches process.*.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig, type ServiceConfig } from '../config/load.js';
import { PodsockError, q } from '../errors.js';
import type { Frontend } from '../frontend.js';
import { HandoverFrontend } from '../idle/handover-frontend.js';
import { backendProtocols } from '../proxy/socket-backends.js';
import { handoverPollMs } from '../idle/handover-poll.js';
import { adoptOrBind, removeStaleSocket } from '../listeners/adopt-or-bind.js';
import { checkSockets } from '../listeners/check-sockets.js';
import { freePort } from '../listeners/free-port.js';
import { createLogger, LOG_LEVELS, type Level, type Logger } from '../log.js';
import { netnsBackendPossible } from '../runtime/container-netns.js';
import { detachAvailable, discardPrestart, resolvePodman } from '../runtime/podman.js';
import { parsePrestart, type Prestart } from '../runtime/prestart.js';
import { podmanSystemdUnit } from '../runtime/systemd-unit.js';
import { dropinDirs } from '../config/dropins.js';
import { configCandidates } from '../config/find.js';
import { specifierContext } from '../config/specifier-context.js';
import { describeFd, scrubbedEnv, type ListenFd } from '../sd/listen-fds.js';
import { closeFd } from '../native/fds.js';
import { relayEngine } from '../native/relay.js';
import { createNotifier, watchdogFromEnv } from '../sd/notify-client.js';
import { releaseMemory } from '../memory/release.js';
import { runtimeDirFor, stateDirFor } from '../paths.js';
import { Supervisor } from '../supervisor.js';
import { serviceRecorder } from '../status/service-recorder.js';
import { flag, parseArgs, type FlagSpec } from './args.js';
import { PODSOCK_FLAGS, podsockFlags } from './podsock-flags.js';

export const RUN_FLAGS: Record<string, FlagSpec> = {
  config: { value: true },
  ...PODSOCK_FLAGS,
  listen: { value: true, repeat: true },
  'log-level': { value: true },
  help: { value: false, short: 'h' },
};

export interface RunInput {
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * Parse the command line and load the configuration: the part shared by `run` and `check`. `unit`
 * is the unit whose %-specifiers to use (check's); by default the unit this process runs in.
 */
export function configFromArgs(argv: string[], env: NodeJS.ProcessEnv, command: string, unit?: string): { cfg: ServiceConfig; listen: string[]; logLevel: Level } {
  const p = parseArgs(argv, RUN_FLAGS, command);
  if (p.positionals.length !== 1) {
    throw new PodsockError(
      'PODSOCK_ERR_USAGE',
      `podsock ${command}: expected exactly one service NAME, got ${p.positionals.length === 0 ? 'none' : p.positionals.map((x) => q(x)).join(' ')} (see 'podsock ${command} --help')`,
    );
  }
  const flags = podsockFlags(p);
  const logLevel = flag(p, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new PodsockError('PODSOCK_ERR_USAGE', `Invalid --log-level ${q(logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const configFile = flag(p, 'config');
  const cfg = loadConfig({
    name: p.positionals[0] as string,
    ...(configFile !== undefined ? { configFile } : {}),
    env,
    uid: process.getuid?.() ?? 0,
    flags,
    extraArgs: p.passthrough,
    ...(unit === undefined ? {} : { specifiers: specifierContext({ env, uid: process.getuid?.() ?? 0, fallbackUnit: unit, unit }) }),
  });
  return { cfg, listen: p.flags.get('listen') ?? [], logLevel: logLevel as Level };
}

/** Proxy mode's frontend, loaded only in proxy mode (net and the proxy are no part of a handover start). */
export async function proxyFrontend(cfg: ServiceConfig, listeners: ListenFd[], log: Logger, env: NodeJS.ProcessEnv): Promise<Frontend> {
  const [{ createProxyFrontend }, { defaultPipe }, { udpProxyOpen }] = await Promise.all([
    import('../proxy/proxy-frontend.js'),
    import('../proxy/proxy.js'),
    import('../native/udp-proxy.js'),
  ]);
  const pipe = defaultPipe(env);
  if (pipe === 'native') {
    // PODSOCK_PROXY_PIPE=poll keeps the relay off io_uring (to rule it out when chasing a bug).
    const e = relayEngine(env.PODSOCK_PROXY_PIPE === 'poll' ? 'poll' : 'auto');
    if (e.engine === 'io_uring') log.debug('Relaying connections through io_uring');
    else log.info({ reason: e.reason }, `Relaying connections with recv/send: io_uring is not available (${e.reason ?? 'unknown'})`);
  }
  return createProxyFrontend({ cfg, listeners, log, pipe, openUdp: udpProxyOpen });
}

/** Run the service until it stops; resolves with the exit status. */
export async function runCommand(input: RunInput): Promise<number> {
  const { env } = input;
  // podman may already be running, started by podsock-launch (runtime/prestart.ts): until the
  // supervisor owns it, any failure here must stop it.
  const pending = { prestart: parsePrestart(env.PODSOCK_PRESTART) };
  try {
    return await runWith(input, pending);
  } catch (err) {
    if (pending.prestart?.kind === 'started') await discardPrestart(pending.prestart);
    throw err;
  }
}

/** The files whose change makes a plan stale: podsock itself and every place its configuration may come from. */
function planCheckFiles(cfg: ServiceConfig, env: NodeJS.ProcessEnv, uid: number): string[] {
  const files = new Set<string>();
  if (process.argv[1] !== undefined) files.add(process.argv[1]);
  if (cfg.source !== null) files.add(cfg.source);
  try {
    for (const c of configCandidates(cfg.name, env, uid)) files.add(c);
  } catch {
    // A bad PODSOCK_CONFIG_DIR with --config: the file given is what counts.
  }
  // Drop-ins: the ones read, the drop-in directories there are (a drop-in added or removed changes
  // one), and the configuration directories (a drop-in directory added changes one).
  for (const f of cfg.files) files.add(f);
  const containers = [...files].filter((p) => p.endsWith('.container'));
  for (const f of containers) files.add(dirname(f));
  for (const f of containers) for (const d of dropinDirs(f, [dirname(f)])) if (existsSync(d)) files.add(d);
  return [...files];
}

async function runWith(input: RunInput, pending: { prestart: Prestart | null }): Promise<number> {
  const { prestart } = pending;
  const { env } = input;
  const { cfg, listen, logLevel } = configFromArgs(input.argv, env, 'run');
  const root = createLogger(logLevel, env);
  const log = root.child({ service: cfg.name });
  const uid = process.getuid?.() ?? 0;
  if (prestart?.kind === 'none') log.debug(`podsock-launch did not start podman: ${prestart.reason}`);
  const planPath = env.PODSOCK_PLAN !== undefined && env.PODSOCK_PLAN.startsWith('/') ? env.PODSOCK_PLAN : null;

  const { listeners, standalone, owned } = adoptOrBind(env, process.pid, listen);
  if (!standalone) for (const l of listeners) log.debug(`Adopted ${describeFd(l)}`);
  checkSockets(cfg, listeners);
  log.info(
    { mode: cfg.mode, ready: cfg.ready.kind, sockets: listeners.map(describeFd) },
    `Starting ${q(cfg.name)} (${standalone ? 'standalone' : 'socket-activated'})`,
  );

  // Capture what belongs to podsock, then keep it away from every child (sd/listen-fds.ts says why).
  const systemd = createNotifier(env);
  const watchdog = watchdogFromEnv(env, process.pid);
  const childEnv = scrubbedEnv(env);
  for (const k of ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete process.env[k];

  // Rootful, podsock connects from inside the container's network namespace; rootless, the backend
  // ports are published on loopback ports picked here (and checked to be podman's once it runs).
  const directBackend = cfg.mode === 'proxy' && netnsBackendPossible({ rootless: uid !== 0, detached: detachAvailable() });
  const backendHostPorts: number[] = [];
  const backendUdpHostPorts: Array<number | null> = [];
  if (cfg.mode === 'proxy' && !directBackend) {
    const protocols = backendProtocols(cfg, listeners);
    for (let i = 0; i < cfg.backends.length; i++) {
      backendHostPorts.push(freePort());
      backendUdpHostPorts.push(protocols[i]?.udp === true ? freePort('udp') : null);
    }
  }

  const frontend: Frontend =
    cfg.mode === 'proxy'
      ? await proxyFrontend(cfg, listeners, log, env)
      : new HandoverFrontend({
          listeners,
          pollMs: handoverPollMs(cfg.idleTimeoutMs),
          onError: (err) => log.warn({ err }, 'Cannot count connections, assuming busy'),
          onFallback: (err) => log.warn({ err }, 'sock_diag is unavailable: counting unix socket connections from /proc/net/unix, where a local user can forge rows'),
        });

  // Standalone (--listen), the container starts on the first connection, not at once: no plan.
  if (standalone && prestart?.kind === 'started') {
    log.warn('podsock-launch started podman, but a standalone podsock starts it on the first connection; stopping it');
    await discardPrestart(prestart);
  }
  pending.prestart = null; // the supervisor owns it from here
  const supervisor = new Supervisor({
    cfg,
    log,
    systemd,
    podman: () => resolvePodman(childEnv),
    runtimeDir: runtimeDirFor(env, uid),
    listeners,
    frontend,
    standalone,
    unit: podmanSystemdUnit(env, standalone, () => readFileSync('/proc/self/cgroup', 'utf8')),
    watchdog,
    backendHostPorts,
    backendUdpHostPorts,
    directBackend,
    uid,
    selinux: existsSync('/sys/fs/selinux/enforce'),
    failureFile: join(stateDirFor(env, uid), `${cfg.name}.failures`),
    status: serviceRecorder(cfg, listeners, env, uid, log),
    startedAt: Date.now() - Math.round(process.uptime() * 1000),
    rootless: uid !== 0,
    prestart: prestart?.kind === 'started' && !standalone ? prestart : null,
    plan: planPath === null || standalone ? null : { path: planPath, checkFiles: () => planCheckFiles(cfg, env, uid) },
    release: () => {
      // After pino is loaded, so that what loading it needed goes too.
      void root.attach().then(() => {
        const r = releaseMemory();
        log.debug({ ...r }, 'Gave back memory start-up or serving needed');
      });
    },
  });
  // Socket-activated, pino loads ATTACH_AFTER_MS after start-up (or at exit): on a 2-core machine,
  // loading it any earlier takes CPU from podman and from the app while the first request waits for
  // them. Standalone, nothing is waiting yet: attach now.
  if (standalone) await root.attach();
  // The first signal starts a graceful stop; a second exits at once.
  const onSignal = (sig: NodeJS.Signals): void => {
    const stop = supervisor.requestStop(sig);
    if (stop.kind === 'exit') process.exit(stop.code);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await supervisor.run();
  } finally {
    await root.attach();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    systemd.close();
    for (const fd of owned) closeFd(fd);
    // Standalone unix sockets are podsock's own: remove them (never done for systemd's sockets).
    for (const l of listeners) if (standalone && l.family === 'unix' && l.path !== undefined && l.path.startsWith('/')) removeStaleSocket(l.path);
  }
}
