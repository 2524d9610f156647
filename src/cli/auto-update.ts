/**
 * `podsock auto-update [NAME...] [--dry-run] [--json]`: update the idle services that opted in with
 * AutoUpdate= (autoupdate/update.ts), which `podman auto-update` cannot see because it only looks at
 * running containers. Without NAME, every NAME.container in podsock's configuration directories
 * (config/find.ts) that sets AutoUpdate=. Prints one row per service (a table, or JSON with --json)
 * and exits 0, or with PODSOCK_ERR_AUTO_UPDATE's status when an image was rolled back or a service
 * could not be updated.
 */
import { readdirSync } from 'node:fs';
import { loadConfig, type ServiceConfig } from '../config/load.js';
import { CONFIG_EXTENSION, configSearchDirs } from '../config/find.js';
import { ERROR_CODES, PodsockError, isPodsockError, q } from '../errors.js';
import { freePort } from '../listeners/free-port.js';
import { createLogger } from '../log.js';
import { runtimeDirFor, stateDirFor } from '../paths.js';
import { privateDir, RUNTIME_DIR_LEVELS } from '../private-files.js';
import { netnsBackendPossible } from '../runtime/container-netns.js';
import { detachAvailable, resolvePodman } from '../runtime/podman.js';
import { scrubbedEnv } from '../sd/listen-fds.js';
import { lockForUpdate } from '../autoupdate/lock.js';
import { tryImage } from '../autoupdate/trial.js';
import { updateService, type UpdateResult } from '../autoupdate/update.js';
import { flag, parseArgs, type FlagSpec } from './args.js';

export const AUTO_UPDATE_FLAGS: Record<string, FlagSpec> = {
  'dry-run': { value: false },
  json: { value: false },
  'log-level': { value: true },
  help: { value: false, short: 'h' },
};

export interface AutoUpdateInput {
  argv: string[];
  env: NodeJS.ProcessEnv;
  uid: number;
  stdout: (text: string) => void;
}

/** The services NAME.container in the configuration directories name, in order, the first directory winning a name. */
export function configuredNames(env: NodeJS.ProcessEnv, uid: number): string[] {
  const names = new Set<string>();
  for (const dir of configSearchDirs(env, uid)) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue; // no such directory: nothing configured there
    }
    for (const e of entries.sort()) {
      // NAME@.container is a template: its instances are the services.
      if (e.endsWith(CONFIG_EXTENSION) && !e.endsWith(`@${CONFIG_EXTENSION}`)) names.add(e.slice(0, -CONFIG_EXTENSION.length));
    }
  }
  return [...names];
}

/** The rows as a table with a header, columns padded to their widest value. */
export function formatTable(rows: readonly UpdateResult[]): string {
  const cells = [['SERVICE', 'IMAGE', 'POLICY', 'STATUS', 'MESSAGE'], ...rows.map((r) => [r.service, r.image, r.policy ?? '-', r.status, r.message])];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...cells.map((c) => (c[i] as string).length)));
  return cells.map((c) => c.map((v, i) => (i < 4 ? v.padEnd(widths[i] as number) : v)).join('  ').trimEnd()).join('\n') + '\n';
}

export async function autoUpdateCommand(input: AutoUpdateInput): Promise<number> {
  const { env, uid } = input;
  const p = parseArgs(input.argv, AUTO_UPDATE_FLAGS, 'auto-update');
  if (p.passthrough.length > 0) throw new PodsockError('PODSOCK_ERR_USAGE', "podsock auto-update: unexpected arguments after '--' (see 'podsock auto-update --help')");
  const dryRun = p.flags.has('dry-run');
  const json = p.flags.has('json');
  const logLevel = flag(p, 'log-level') ?? 'warn';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(logLevel)) {
    throw new PodsockError('PODSOCK_ERR_USAGE', `Invalid --log-level ${q(logLevel)}: expected one of fatal, error, warn, info, debug, trace`);
  }
  const explicit = p.positionals.length > 0;
  const names = explicit ? p.positionals : configuredNames(env, uid);

  const log = createLogger(logLevel as 'warn', env).child({ command: 'auto-update' });
  const childEnv = scrubbedEnv(env);
  // Not the unit of whoever runs this: the trial container must not look like the service's own.
  delete childEnv.PODMAN_SYSTEMD_UNIT;
  // podman run -d prints the container's id, and the trial container's output passes through: both
  // go to stderr, since stdout is the report.
  const podman = { ...resolvePodman(childEnv), stdoutFd: 2 };
  const stateDir = stateDirFor(env, uid);
  const runtimeParent = runtimeDirFor({ ...env, RUNTIME_DIRECTORY: '' }, uid);
  privateDir(runtimeParent, RUNTIME_DIR_LEVELS);
  const rootless = uid !== 0;
  const directBackend = netnsBackendPossible({ rootless, detached: detachAvailable() });
  const { proxyFrontend } = await import('./run.js');

  // SIGINT/SIGTERM: the trial under way stops (and its image is rolled back); no further service is looked at.
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const rows: UpdateResult[] = [];
  try {
    await updateAll();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  input.stdout(json ? `${JSON.stringify(rows, null, 2)}\n` : rows.length === 0 ? 'No service sets AutoUpdate=\n' : formatTable(rows));
  return rows.some((r) => r.status === 'rolled-back' || r.status === 'failed') ? ERROR_CODES.PODSOCK_ERR_AUTO_UPDATE.exit : 0;

  async function updateAll(): Promise<void> {
    for (const name of names) {
      if (interrupt.signal.aborted) {
        rows.push({ service: name, image: '-', policy: null, status: 'skipped', message: 'interrupted', imageId: null });
        continue;
      }
      let cfg: ServiceConfig;
      try {
        cfg = loadConfig({ name, env, uid, flags: {}, extraArgs: [] });
      } catch (err) {
        if (!explicit && !isPodsockError(err, 'PODSOCK_ERR_CONFIG') && !isPodsockError(err, 'PODSOCK_ERR_TIMESPAN')) throw err;
        rows.push({ service: name, image: '-', policy: null, status: 'failed', message: (err as Error).message, imageId: null });
        continue;
      }
      if (cfg.autoUpdate === null && !explicit) continue;
      try {
        rows.push(
          await updateService(cfg, {
            podman,
            stateDir,
            dryRun,
            lock: (c) => lockForUpdate(stateDir, c),
            tryImage: (c, imageId) =>
              tryImage({
                cfg: c,
                imageId,
                podman,
                log: log.child({ service: c.name }),
                runtimeParent,
                rootless,
                directBackend: c.mode === 'proxy' && directBackend,
                freePort: () => freePort(),
                proxyFrontend: (tc, listeners, l) => proxyFrontend(tc, listeners, l, env),
                signal: interrupt.signal,
              }),
          }),
        );
      } catch (err) {
        rows.push({ service: name, image: cfg.image, policy: cfg.autoUpdate, status: 'failed', message: (err as Error).message, imageId: null });
      }
    }
  }
}
