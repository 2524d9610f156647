/**
 * The test host's registry (scripts/lib/registry.sh, recorded in .test-host/env.json) and what the
 * auto-update tests do with it: images built from the fixture image, pushed there and pulled back, and
 * `podman auto-update` run as the user manager's units would see podman.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Test } from 'tap';
import { childEnv, podman, repoRoot, type CommandResult, type HostEnv } from './harness.js';

export interface Registry {
  /** 127.0.0.1:PORT */
  address: string;
  /** A registries.conf that marks it insecure (plain HTTP), for CONTAINERS_REGISTRIES_CONF. */
  registriesConf: string;
  /** The systemd user manager, whose mount namespace the units run in. */
  managerPid: number | null;
}

interface RegistryJson {
  systemdUserPid?: number | null;
  registry?: { ok: boolean; reason: string | null; address: string | null; registriesConf: string | null };
}

/** The registry's facts, or null after a skip (or, with CI=true, a failure) naming why there is none. */
export function registryFacts(t: Test): Registry | null {
  let facts: RegistryJson = {};
  try {
    facts = JSON.parse(readFileSync(join(repoRoot, '.test-host', 'env.json'), 'utf8')) as RegistryJson;
  } catch {
    // hostEnv() has reported it already.
  }
  const r = facts.registry;
  if (r?.ok !== true || r.address === null || r.registriesConf === null) {
    const reason = `no registry on the test host: ${r?.reason ?? "env.json has none; run 'bash scripts/test-host.sh'"}`;
    if (process.env.CI === 'true') t.fail(reason);
    else t.pass('no registry', { skip: reason });
    return null;
  }
  return { address: r.address, registriesConf: r.registriesConf, managerPid: facts.systemdUserPid ?? null };
}

/** podman with the registry's registries.conf. Never throws on a non-zero exit. */
export async function podmanReg(h: HostEnv, reg: Registry, ...args: string[]): Promise<CommandResult> {
  const r = await execa('podman', args, {
    env: childEnv(h, { CONTAINERS_REGISTRIES_CONF: reg.registriesConf }),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

async function must(what: string, r: Promise<CommandResult>): Promise<string> {
  const done = await r;
  if (done.exitCode !== 0) throw new Error(`${what} exited ${done.exitCode}: ${done.stderr.trim()}`);
  return done.stdout.trim();
}

/**
 * Builds an image FROM the fixture image with `lines` added (LABEL, ENV, CMD), tagged `tag`; returns
 * its id. The id is removed by a teardown.
 */
export async function buildImage(t: Test, h: HostEnv, tag: string, lines: string[]): Promise<string> {
  const dir = await mkdtemp(join(h.stateDir, 'build-'));
  try {
    await writeFile(join(dir, 'Containerfile'), [`FROM ${h.fixtureImage}`, ...lines, ''].join('\n'));
    await must(`podman build ${tag}`, podman(h, 'build', '--quiet', '--pull=never', '--tag', tag, dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const id = await must(`podman image inspect ${tag}`, podman(h, 'image', 'inspect', '--format', '{{.Id}}', tag));
  t.teardown(async () => {
    await podman(h, 'rmi', '--force', id);
  });
  return id;
}

/** Pushes the local image `id` to the registry as `ref` (plain HTTP). */
export async function push(h: HostEnv, reg: Registry, id: string, ref: string): Promise<void> {
  await must(`podman push ${ref}`, podmanReg(h, reg, 'push', '--quiet', '--tls-verify=false', id, `docker://${ref}`));
}

/** The id of the image `ref` names in local storage, or null when it names none. */
export async function imageId(h: HostEnv, ref: string): Promise<string | null> {
  const r = await podman(h, 'image', 'inspect', '--format', '{{.Id}}', ref);
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

/** The id of the image a container runs, or null when there is no such container. */
export async function containerImage(h: HostEnv, container: string): Promise<string | null> {
  const r = await podman(h, 'container', 'inspect', '--format', '{{.Image}}', container);
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

/** Every local image whose name starts with `repo` (the registry's repository), as 'name:tag id'. */
export async function imagesOf(h: HostEnv, repo: string): Promise<string[]> {
  const r = await podman(h, 'images', '--noheading', '--format', '{{.Repository}}:{{.Tag}} {{.Id}}', '--filter', `reference=${repo}`);
  // podman's reference filter also matches other repositories ending in the same name.
  return r.stdout.split('\n').filter((l) => l.startsWith(`${repo}:`));
}

/** One row of `podman auto-update --format json`. */
export interface AutoUpdateRow {
  Unit: string;
  Container: string;
  Image: string;
  Policy: string;
  Updated: string;
}

/**
 * `podman auto-update ARGS --format json` as root on this host. Root's podman asks the system manager
 * at /run/systemd/private to restart units (go-systemd NewSystemdConnectionContext()); the units run
 * under the test host's user manager, so podman runs in a private copy of that manager's mount
 * namespace where /run/systemd/private is the user manager's socket. Nothing outside that one podman
 * process sees the link.
 */
export async function podmanAutoUpdate(h: HostEnv, reg: Registry, ...args: string[]): Promise<{ rows: AutoUpdateRow[]; result: CommandResult }> {
  const script = 'mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && ln -s "$0/systemd/private" /run/systemd/private && exec podman auto-update "$@"';
  const inner = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, h.xdgRuntimeDir, ...args, '--format', 'json'];
  const argv = reg.managerPid === null ? inner : ['nsenter', '-t', String(reg.managerPid), '-m', '--', ...inner];
  const r = await execa(argv[0] as string, argv.slice(1), {
    env: childEnv(h, { CONTAINERS_REGISTRIES_CONF: reg.registriesConf }),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 180_000,
  });
  const result = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
  let rows: AutoUpdateRow[] = [];
  try {
    rows = (JSON.parse(r.stdout === '' ? '[]' : r.stdout) as AutoUpdateRow[] | null) ?? [];
  } catch {
    // Left empty: the caller shows `result`.
  }
  return { rows, result };
}
