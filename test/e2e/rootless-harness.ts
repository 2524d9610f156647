/**
 * Helpers for the rootless end-to-end tests: the facts scripts/test-host-rootless.sh recorded
 * (.test-host/rootless.json), commands run as the unprivileged test user (systemctl --user against
 * that user's own manager, rootless podman), and podsock services installed the way that user would
 * install them: units in the user's runtime unit directory, NAME.container in ~/.config/podsock/.
 *
 * The tests run as root (they read the user's files and processes); every command for the user runs
 * through setpriv with the user's uid, gid and groups and a login-like environment, in the user
 * manager's mount namespace when the setup script started that manager (where units run, and where
 * the user's podman pause process lives; see the script).
 */
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { Test } from 'tap';
import { freePort, readLog, repoRoot, waitFor, type CommandResult } from './harness.js';
import { podsockServiceUnit } from './service-files.js';

/** What the rootless tests need to know; see scripts/test-host-rootless.sh. */
export interface RootlessEnv {
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** The user's runtime directory, /run/user/UID. */
  xdgRuntimeDir: string;
  /** `<xdgRuntimeDir>/systemd/user`: runtime units of the user's manager. */
  unitDir: string;
  /** The user manager the setup script started (in a private mount namespace), or null for a lingering one. */
  managerPid: number | null;
  /** A containers.conf the user's podman needs, or null when the defaults work. */
  containersConf: string | null;
  /** A directory the user owns for test logs (`<home>/.podsock-e2e`). */
  workDir: string;
  /** `dist/bin/podsock.cjs` as the user can read it (the repository's, or a copy). */
  podsockBin: string;
  /** The node binary for ExecStart=. */
  node: string;
  /** Whether rootless `podman run -p` works (proxy mode needs it), and why not. */
  network: boolean;
  networkReason: string | null;
  fixtureImage: string;
  podmanRunArgs: string[];
}

interface RootlessJson {
  rootless?: {
    ok: boolean;
    reason: string | null;
    user: string;
    uid: number | null;
    gid: number | null;
    home: string | null;
    XDG_RUNTIME_DIR: string | null;
    unitDir: string | null;
    managerPid: number | null;
    CONTAINERS_CONF: string | null;
    workDir: string | null;
    podsockRoot: string | null;
    podsockCopied?: boolean;
    node: string;
    network: boolean;
    networkReason: string | null;
    fixtureImage: string;
    podmanRunArgs: string[];
  };
}

/**
 * Reads `.test-host/rootless.json` and returns the facts, or null after reporting why the rootless
 * tests cannot run: with `CI=true` as a failure, so CI cannot pass without them; otherwise as a skip.
 */
export function rootlessEnv(t: Test): RootlessEnv | null {
  const file = join(repoRoot, '.test-host', 'rootless.json');
  let reason: string | undefined;
  let r: RootlessJson['rootless'];
  try {
    r = (JSON.parse(readFileSync(file, 'utf8')) as RootlessJson).rootless;
    if (r === undefined) reason = `'${file}' has no 'rootless' facts`;
    else if (!r.ok) reason = r.reason ?? 'unknown reason';
  } catch (err) {
    reason = `cannot read '${file}' (${(err as Error).message}); run 'bash scripts/test-host.sh' as root`;
  }
  if (reason === undefined && process.getuid?.() !== 0) reason = 'the rootless tests run as root (they switch to the test user)';
  if (reason !== undefined || r === undefined || r.uid === null || r.gid === null || r.home === null ||
    r.XDG_RUNTIME_DIR === null || r.unitDir === null || r.workDir === null || r.podsockRoot === null) {
    reason ??= `'${file}' is incomplete`;
    if (process.env.CI === 'true') t.fail(`rootless test host not ready: ${reason}`);
    else t.pass('rootless test host not ready', { skip: reason });
    return null;
  }
  return {
    user: r.user,
    uid: r.uid,
    gid: r.gid,
    home: r.home,
    xdgRuntimeDir: r.XDG_RUNTIME_DIR,
    unitDir: r.unitDir,
    managerPid: r.managerPid,
    containersConf: r.CONTAINERS_CONF,
    workDir: r.workDir,
    // The setup ran in one checkout; a .test-host shared by several must not make the others test its
    // build. When the user can read the repository (no copy was made), the checkout running is used.
    podsockBin: join(r.podsockCopied === true ? r.podsockRoot : repoRoot, 'dist', 'bin', 'podsock.cjs'),
    node: r.node,
    network: r.network,
    networkReason: r.networkReason,
    fixtureImage: r.fixtureImage,
    podmanRunArgs: [...r.podmanRunArgs],
  };
}

// Generous: the machines are shared and rootless podman is slower than rootful.
const COMMAND_TIMEOUT_MS = 120_000;

/**
 * Runs `file ARGS` as the test user: its uid, gid and groups, HOME/USER/LOGNAME/SHELL/PATH as for a
 * login, XDG_RUNTIME_DIR and (when needed) CONTAINERS_CONF, the home directory as working directory,
 * and the user manager's mount namespace. Never throws on a non-zero exit.
 */
export async function asUser(r: RootlessEnv, file: string, args: string[]): Promise<CommandResult> {
  const argv = [
    'setpriv', `--reuid=${r.uid}`, `--regid=${r.gid}`, '--init-groups', '--reset-env',
    'env', '-C', r.home, `XDG_RUNTIME_DIR=${r.xdgRuntimeDir}`,
    ...(r.containersConf === null ? [] : [`CONTAINERS_CONF=${r.containersConf}`]),
    file, ...args,
  ];
  const full = r.managerPid === null ? argv : ['nsenter', '-t', String(r.managerPid), '-m', '--', ...argv];
  const result = await execa(full[0] as string, full.slice(1), {
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: COMMAND_TIMEOUT_MS,
  });
  if (result.timedOut) throw new Error(`'${file} ${args.join(' ')}' as '${r.user}' did not finish within ${COMMAND_TIMEOUT_MS} ms`);
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}

/** `systemctl --user ARGS` against the test user's own manager. */
export function userSystemctl(r: RootlessEnv, ...args: string[]): Promise<CommandResult> {
  return asUser(r, 'systemctl', ['--user', ...args]);
}

/** Rootless `podman ARGS` as the test user. */
export function userPodman(r: RootlessEnv, ...args: string[]): Promise<CommandResult> {
  return asUser(r, 'podman', args);
}

/** True when the test user has a container (in any state) of that name. */
export async function userContainerExists(r: RootlessEnv, name: string): Promise<boolean> {
  const res = await userPodman(r, 'container', 'exists', name);
  if (res.exitCode === 0) return true;
  if (res.exitCode === 1) return false;
  throw new Error(`'podman container exists ${name}' as '${r.user}' exited ${res.exitCode}: ${res.stderr.trim()}`);
}

/** Writes a file the test user owns, creating its missing parent directories below the home directory as the user's. */
export function writeUserFile(r: RootlessEnv, path: string, text: string): void {
  const parents: string[] = [];
  for (let d = dirname(path); d.startsWith(r.home + '/') || d.startsWith(r.xdgRuntimeDir + '/'); d = dirname(d)) parents.unshift(d);
  for (const d of parents) {
    try {
      mkdirSync(d);
      chownSync(d, r.uid, r.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  writeFileSync(path, text);
  chownSync(path, r.uid, r.gid);
}

/** `systemctl --user show` of NAME.service for the properties the tests look at. */
export async function userServiceState(r: RootlessEnv, name: string): Promise<Record<string, string>> {
  const props = ['ActiveState', 'SubState', 'Result', 'MainPID', 'ExecMainPID', 'ExecMainStatus', 'StatusText'];
  const res = await userSystemctl(r, 'show', ...props.flatMap((p) => ['-p', p]), `${name}.service`);
  if (res.exitCode !== 0) throw new Error(`'systemctl --user show ${name}.service' as '${r.user}' exited ${res.exitCode}: ${res.stderr.trim()}`);
  const out: Record<string, string> = {};
  for (const line of res.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  for (const p of props) out[p] ??= '';
  return out;
}

/** Waits until NAME.service's ActiveState is one of `states`; returns its properties. */
export function waitUserState(r: RootlessEnv, name: string, states: string[], timeoutMs: number): Promise<Record<string, string>> {
  return waitFor(`${name}.service of '${r.user}' to be ${states.join('|')}`, async () => {
    const s = await userServiceState(r, name);
    return states.includes(s.ActiveState ?? '') ? s : false;
  }, timeoutMs, 100);
}

export interface UserServiceOptions {
  /** Listen with ListenDatagram= on the same address as well (UDP proxy mode). */
  datagram?: boolean;
  /** The whole NAME.container text. */
  containerFile: string;
}

export interface UserService {
  name: string;
  port: number;
  /** The service's stdout/stderr (podsock's log and the container's output). */
  log: string;
  /** Where NAME.container was written: `~/.config/podsock/NAME.container`. */
  configFile: string;
  containerName: string;
  url: (path?: string) => string;
}

/**
 * Installs NAME.socket (127.0.0.1, a free port) and NAME.service (Type=notify, running podsock) in
 * the test user's runtime unit directory and NAME.container in the user's ~/.config/podsock/, and
 * starts the socket. The service sets neither XDG_RUNTIME_DIR nor a configuration directory: podsock
 * must find both from what the user's manager gives every service, as in a user's own unit.
 * Teardown (registered before anything is created) stops the units, removes the files and the container.
 */
export async function installUserService(t: Test, r: RootlessEnv, name: string, o: UserServiceOptions): Promise<UserService> {
  const port = await freePort();
  const log = join(r.workDir, 'logs', `${name}.log`);
  const configFile = join(r.home, '.config', 'podsock', `${name}.container`);
  const containerName = `podsock-${name}`;
  const units = [`${name}.socket`, `${name}.service`];
  t.teardown(async () => {
    await userSystemctl(r, 'stop', ...units);
    await userSystemctl(r, 'reset-failed', ...units);
    await Promise.all([...units.map((u) => rm(join(r.unitDir, u), { force: true })), rm(configFile, { force: true })]);
    await userSystemctl(r, 'daemon-reload');
    await userPodman(r, 'rm', '--force', '--ignore', containerName);
  });
  writeUserFile(r, configFile, o.containerFile);
  writeUserFile(
    r,
    join(r.unitDir, `${name}.socket`),
    ['[Socket]', `ListenStream=127.0.0.1:${port}`, ...(o.datagram === true ? [`ListenDatagram=127.0.0.1:${port}`] : []), ''].join('\n'),
  );
  writeUserFile(
    r,
    join(r.unitDir, `${name}.service`),
    podsockServiceUnit(name, { execStart: `${r.node} ${r.podsockBin} run ${name} --log-level debug`, log, containersConf: r.containersConf, timeoutStartSec: 90 }),
  );
  const reload = await userSystemctl(r, 'daemon-reload');
  if (reload.exitCode !== 0) throw new Error(`'systemctl --user daemon-reload' as '${r.user}' exited ${reload.exitCode}: ${reload.stderr.trim()}`);
  const started = await userSystemctl(r, 'start', `${name}.socket`);
  if (started.exitCode !== 0) throw new Error(`cannot start ${name}.socket as '${r.user}': ${started.stderr.trim()}`);
  return { name, port, log, configFile, containerName, url: (path = '/') => `http://127.0.0.1:${port}${path}` };
}

/** At the end of `t`, if it failed: the last 4000 characters of the service's log as a comment. */
export function commentLogOnFailure(t: Test, log: string): void {
  t.teardown(() => {
    if (!t.passing()) t.comment(`service log (${log}):\n${readLog(log).slice(-4000)}`);
  });
}

/**
 * Ends the test user's podman pause process (the holder of rootless podman's user and mount
 * namespaces), so that the next podman call creates them again: the full user-namespace re-exec path
 * of rootless podman (podman's pkg/rootless/rootless_linux.c) instead of joining an existing pause process.
 * Throws while the user has any container, which would lose its namespace holder. Resolves with the
 * ended pid (null when there was none) once the process is gone.
 */
export async function endPauseProcess(r: RootlessEnv): Promise<number | null> {
  const ps = await userPodman(r, 'ps', '--all', '--quiet');
  if (ps.exitCode !== 0) throw new Error(`'podman ps' as '${r.user}' exited ${ps.exitCode}: ${ps.stderr.trim()}`);
  if (ps.stdout.trim() !== '') throw new Error(`'${r.user}' has containers (${ps.stdout.trim().split('\n').join(', ')}); not ending the pause process`);
  const pid = pausePid(r);
  if (pid === null) return null;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  await waitFor(`pause process ${pid} to exit`, async () => !existsSync(`/proc/${pid}`), 10_000, 20);
  return pid;
}

/** The pid of the test user's running podman pause process, or null. */
export function pausePid(r: RootlessEnv): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(r.xdgRuntimeDir, 'libpod', 'tmp', 'pause.pid'), 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    // catatonit -P, or podman itself when catatonit is not installed.
    return ['catatonit', 'podman'].includes(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()) ? pid : null;
  } catch {
    return null;
  }
}
