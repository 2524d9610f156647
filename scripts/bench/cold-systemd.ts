/**
 * The cold-start benchmark's contact with the systemd user manager and podman: install the units of
 * the variants, stop a service after a sample and wait until its container is gone, and remove
 * everything at the end. The manager is the test host's (scripts/test-host.sh).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childEnv, repoRoot, run } from './host.js';
import { containerName, podsockContainerFile, serviceUnit, socketUnit, type ColdUnitContext, type ColdVariant } from './cold-units.js';

/** The test host's manager: where its runtime directory and unit directory are, and podman's config. */
export interface UserManager {
  xdgRuntimeDir: string;
  unitDir: string;
  containersConf: string | null;
  /** The environment for systemctl and podman children. */
  env: NodeJS.ProcessEnv;
}

/**
 * The user manager recorded in .test-host/env.json, or XDG_RUNTIME_DIR of this process when there is
 * no such file. Throws when `systemctl --user` cannot reach it, naming the script that starts one.
 */
export async function userManager(): Promise<UserManager> {
  const file = join(repoRoot, '.test-host', 'env.json');
  const facts = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { XDG_RUNTIME_DIR?: string; CONTAINERS_CONF?: string | null }) : {};
  const xdgRuntimeDir = facts.XDG_RUNTIME_DIR ?? process.env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`;
  const env: NodeJS.ProcessEnv = { ...childEnv(), XDG_RUNTIME_DIR: xdgRuntimeDir };
  for (const key of Object.keys(env)) if (key.startsWith('LISTEN_')) delete env[key];
  delete env.NOTIFY_SOCKET;
  const m = { xdgRuntimeDir, unitDir: join(xdgRuntimeDir, 'systemd', 'user'), containersConf: env.CONTAINERS_CONF ?? null, env };
  await run('systemctl', ['--user', 'show', '-p', 'Version'], { env, timeoutMs: 10_000 }).catch((err: Error) => {
    throw new Error(`No systemd user manager at XDG_RUNTIME_DIR='${xdgRuntimeDir}' (run 'bash scripts/test-host.sh'): ${err.message}`);
  });
  return m;
}

/** `systemctl --user ARGS`; rejects on a non-zero exit. */
export function systemctl(m: UserManager, ...args: string[]): Promise<string> {
  return run('systemctl', ['--user', ...args], { env: m.env, timeoutMs: 120_000 });
}

/** `podman ARGS`; rejects on a non-zero exit. */
export function podman(m: UserManager, ...args: string[]): Promise<string> {
  return run('podman', args, { env: m.env, timeoutMs: 120_000 });
}

/** podman's absolute path in the manager's environment, for ExecStart= lines. */
export async function podmanPath(m: UserManager): Promise<string> {
  return (await run('sh', ['-c', 'command -v podman'], { env: m.env })).trim();
}

/** One installed variant. */
export interface ColdService {
  variant: ColdVariant;
  unit: string;
  port: number;
  container: string;
  log: string;
}

/** The service that installService() will create, for the caller to register for removal first. */
export function coldService(variant: ColdVariant, c: ColdUnitContext): ColdService {
  return { variant, unit: c.unit, port: c.port, container: containerName(variant, c.unit), log: c.log };
}

/**
 * Write the .socket and .service units of `variant` (and podsock's .container file) and start the
 * socket. `c.unit` must be unique on the manager. The caller registers coldService(variant, c) for
 * removeServices() before calling this, so that a failure half-way leaves nothing behind.
 */
export async function installService(m: UserManager, variant: ColdVariant, c: ColdUnitContext): Promise<void> {
  mkdirSync(m.unitDir, { recursive: true });
  if (variant === 'podsock-handover' || variant === 'podsock-proxy') writeFileSync(c.podsockConfig, podsockContainerFile(variant, c));
  writeFileSync(join(m.unitDir, `${c.unit}.socket`), socketUnit(c));
  writeFileSync(join(m.unitDir, `${c.unit}.service`), serviceUnit(variant, c));
  await systemctl(m, 'daemon-reload');
  await systemctl(m, 'start', `${c.unit}.socket`);
}

/** The service's ActiveState (active, activating, deactivating, inactive, failed). */
export async function activeState(m: UserManager, unit: string): Promise<string> {
  return (await systemctl(m, 'show', '-p', 'ActiveState', '--value', `${unit}.service`)).trim();
}

/**
 * When systemd forked the service's main process and when the service became active (for a
 * Type=notify service, READY=1; for Type=simple, right after the fork), CLOCK_MONOTONIC in µs, or
 * null when systemd has not recorded it (0).
 */
export async function serviceTimes(m: UserManager, unit: string): Promise<{ execUs: bigint | null; activeUs: bigint | null }> {
  const out = await systemctl(m, 'show', '-p', 'ExecMainStartTimestampMonotonic', '-p', 'ActiveEnterTimestampMonotonic', `${unit}.service`);
  const get = (key: string): bigint | null => {
    const v = new RegExp(`^${key}=(\\d+)$`, 'm').exec(out)?.[1];
    return v === undefined || v === '0' ? null : BigInt(v);
  };
  return { execUs: get('ExecMainStartTimestampMonotonic'), activeUs: get('ActiveEnterTimestampMonotonic') };
}

/** Whether the container exists (running, stopping or just created). */
export async function containerExists(m: UserManager, name: string): Promise<boolean> {
  return podman(m, 'container', 'exists', name).then(
    () => true,
    () => false,
  );
}

/**
 * Stop the service (the socket keeps listening) and wait until the service is inactive and its
 * container gone, so the next sample is a cold start again. `systemctl stop` returns when the stop
 * job is done (ExecStopPost= included); the container check backs off from 50 ms to 1 s, for at
 * most `deadlineMs`. A failed service is reset so that it can be activated again.
 */
export async function stopCold(m: UserManager, s: ColdService, deadlineMs = 60_000): Promise<void> {
  await systemctl(m, 'stop', `${s.unit}.service`);
  const end = Date.now() + deadlineMs;
  let delay = 50;
  for (;;) {
    const state = await activeState(m, s.unit);
    if (state === 'failed') await systemctl(m, 'reset-failed', `${s.unit}.service`);
    const settled = state === 'inactive' || state === 'failed';
    if (settled && !(await containerExists(m, s.container))) return;
    if (Date.now() > end) throw new Error(`${s.unit}.service did not stop within ${deadlineMs} ms (state '${state}', container '${s.container}' still present)`);
    await sleep(delay);
    delay = Math.min(1000, delay * 2);
  }
}

/**
 * Stop the sockets and services of `units` in one transaction (so no socket re-activates its
 * service), remove their containers, unit files and failed state, and reload. Never throws: it runs
 * on the way out, after errors and on SIGINT.
 */
export async function removeServices(m: UserManager, services: readonly ColdService[]): Promise<void> {
  if (services.length === 0) return;
  const units = services.flatMap((s) => [`${s.unit}.socket`, `${s.unit}.service`]);
  await systemctl(m, 'stop', ...units).catch(() => undefined);
  await systemctl(m, 'reset-failed', ...units).catch(() => undefined);
  await Promise.all(services.map((s) => podman(m, 'rm', '--force', '--ignore', '--time', '0', s.container).catch(() => undefined)));
  for (const u of units) rmSync(join(m.unitDir, u), { force: true });
  await systemctl(m, 'daemon-reload').catch(() => undefined);
}
