/**
 * The memory benchmark's contact with the systemd user manager and podman: write and start the
 * units of a variant (memory-units.ts), find a service's main process and its container's conmon,
 * and remove everything at the end. The manager is the test host's (cold-systemd.ts userManager()).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateDirFor } from '../../src/paths.js';
import { podman, systemctl, type UserManager } from './cold-systemd.js';
import { memoryFiles, type Layout, type MemoryUnitContext, type MemoryVariant } from './memory-units.js';

/**
 * Write the files of one service of `variant` (podsock's .container into `c.configDir`, units into
 * the manager's unit directory). The caller registers the service's layout for removeLayouts()
 * first and runs `systemctl daemon-reload` once after writing a batch.
 */
export function writeService(m: UserManager, variant: MemoryVariant, c: MemoryUnitContext): void {
  mkdirSync(m.unitDir, { recursive: true });
  mkdirSync(c.configDir, { recursive: true });
  for (const f of memoryFiles(variant, c)) writeFileSync(join(f.dir === 'unit' ? m.unitDir : c.configDir, f.name), f.text);
}

/** Start the layout's units in order; `systemctl start` of a Type=notify service returns once it is ready. */
export async function startService(m: UserManager, l: Layout): Promise<void> {
  for (const u of l.start) await systemctl(m, 'start', u);
}

/** What systemd knows of a running service: its main process and its cgroup (ControlGroup=). */
export interface ServiceProcess {
  mainPid: number;
  /** The cgroup v2 path, e.g. `/app.slice/NAME.service`; null when systemd does not say. */
  cgroup: string | null;
}

/** A service's MainPID and ControlGroup; throws when it has no main process (not running). */
export async function serviceProcess(m: UserManager, service: string): Promise<ServiceProcess> {
  const out = (await systemctl(m, 'show', '-p', 'MainPID', '-p', 'ControlGroup', '-p', 'ActiveState', service)).trim();
  const pid = Number(/^MainPID=(\d+)$/m.exec(out)?.[1] ?? 0);
  if (pid === 0) throw new Error(`'${service}' has no main process (${out.replace(/\n/g, ', ')})`);
  const cgroup = /^ControlGroup=(\/.*)$/m.exec(out)?.[1] ?? null;
  return { mainPid: pid, cgroup };
}

/** The pid of the container's conmon (`podman inspect`); throws when the container is not running. */
export async function conmonPid(m: UserManager, container: string): Promise<number> {
  const pid = Number((await podman(m, 'inspect', '--type', 'container', '--format', '{{.State.ConmonPid}}', container)).trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`Container '${container}' has no conmon (ConmonPid '${pid}')`);
  return pid;
}

/**
 * Stop every unit of `layouts` in one transaction (so no socket re-activates its service), remove
 * their containers, unit files, leftovers and failed state, and reload. Touches only what the
 * layouts name. Never throws: it runs on the way out, after errors and on SIGINT.
 */
export async function removeLayouts(m: UserManager, layouts: readonly Layout[]): Promise<void> {
  if (layouts.length === 0) return;
  const units = layouts.flatMap((l) => l.units);
  await systemctl(m, 'stop', ...units).catch(() => undefined);
  await systemctl(m, 'reset-failed', ...units).catch(() => undefined);
  const containers = layouts.flatMap((l) => l.containers);
  await Promise.all(containers.map((c) => podman(m, 'rm', '--force', '--ignore', '--time', '0', c).catch(() => undefined)));
  for (const u of units) rmSync(join(m.unitDir, u), { force: true });
  for (const f of layouts.flatMap((l) => l.leftovers)) rmSync(f, { force: true });
  await systemctl(m, 'daemon-reload').catch(() => undefined);
}

/** podsock's per-user state directory, where podsock-launch's plans live (src/paths.ts stateDirFor()). */
export function podsockStateDir(xdgRuntimeDir: string, uid: number): string {
  return stateDirFor({ XDG_RUNTIME_DIR: xdgRuntimeDir }, uid);
}

/**
 * Remove what the benchmark's podsock services left in podsock's state directory: the launch plans
 * (`launch-*.plan`, written once a container was ready) that name a file below `workDir`, the
 * benchmark's own temporary directory, and the `NAME.failures` files of `names`. Anything else there
 * belongs to someone else and stays. Never throws.
 */
export function removePodsockState(stateDir: string, workDir: string, names: readonly string[]): void {
  let entries: string[];
  try {
    entries = readdirSync(stateDir);
  } catch {
    return;
  }
  // Plans are NUL-separated tokens; a path token of ours starts right after a NUL.
  const mark = `\0${workDir}/`;
  for (const e of entries) {
    const path = join(stateDir, e);
    try {
      if (/^launch-[0-9a-f]+\.plan$/.test(e) && readFileSync(path, 'latin1').includes(mark)) rmSync(path, { force: true });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  for (const n of names) rmSync(join(stateDir, `${n}.failures`), { force: true });
}
