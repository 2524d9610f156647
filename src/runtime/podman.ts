/**
 * The one podman driver: every podman process podsock starts is spawned here. The `run` child gets the
 * listening fds (handover) and the trampoline; helper commands (stop, rm, port, image exists) run
 * with a scrubbed environment and never see LISTEN_* (podman forwards whatever sits at fds 3.. when
 * LISTEN_FDS is set: containers/podman issue 20968). Library code: throws PodsockError, never logs.
 */
import type * as ChildProcessModule from 'node:child_process';
import { accessSync, constants as fsConstants, watch, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, dirname, basename } from 'node:path';
import { PodsockError, q } from '../errors.js';
import { adoptProcess, nativeSpawnAvailable, setChildSubreaper, spawnProcess, type NativeProcess } from '../native/spawn.js';
import { readPidfile } from './container-netns.js';
import { trampoline, type RunCommand } from './podman-argv.js';

let childProcessModule: typeof ChildProcessModule | undefined;
/**
 * node:child_process, loaded on first use: `podman run` itself is started by the addon, and loading
 * child_process (with net and streams behind it) is a measurable part of a cold start.
 */
function childProcess(): typeof ChildProcessModule {
  return (childProcessModule ??= createRequire(import.meta.url)('node:child_process') as typeof ChildProcessModule);
}

export interface Podman {
  /** Absolute path of the podman binary. */
  binary: string;
  /** Environment for every podman process (scrubbed of LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*). */
  env: Record<string, string>;
  /**
   * The fd `podman run` gets as its stdout (and, with --log-driver=passthrough, the container's);
   * 1 by default. `podsock auto-update` gives 2: its stdout is its report.
   */
  stdoutFd?: number;
}

/**
 * Find podman: `$PODSOCK_PODMAN` if set (tests and unusual installs), else the first `podman` on PATH.
 * Missing → PODSOCK_ERR_PODMAN_MISSING naming what was searched.
 */
export function resolvePodman(env: Record<string, string>): Podman {
  const override = env.PODSOCK_PODMAN;
  const candidates =
    override !== undefined && override !== ''
      ? [override]
      : (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'podman'));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return { binary: c, env };
    } catch {
      // next candidate
    }
  }
  throw new PodsockError(
    'PODSOCK_ERR_PODMAN_MISSING',
    override !== undefined && override !== ''
      ? `podman not found: PODSOCK_PODMAN=${q(override)} is not an executable file`
      : `podman not found on PATH ${q(env.PATH ?? '')}: install podman (Debian: apt-get install podman) or set PODSOCK_PODMAN`,
  );
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why neither is known (a detached container whose conmon could not be watched). */
  lost?: string;
}

/**
 * A started container: the `podman run` child while it runs, then (detached) the container's conmon.
 * `exited` settles once, with the container's exit status (or podman's, when podman failed).
 */
export interface RunningContainer {
  pid: number | undefined;
  /** Send a signal to podman, or once podman has exited (detached) to conmon; false once all is gone. */
  kill(signal: NodeJS.Signals): boolean;
  exited: Promise<ExitInfo>;
}

/** How a container is watched: attached (`podman run` stays until it ends) or detached (`-d`, conmon watched). */
export type RunWatch = { detached: false } | { detached: true; conmonPidfile: string };

/** os.constants.signals, loaded on first use (node:os is no part of the start path). */
function signals(): Record<NodeJS.Signals, number> {
  return (createRequire(import.meta.url)('node:os') as typeof import('node:os')).constants.signals as Record<NodeJS.Signals, number>;
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, value] of Object.entries(signals())) if (value === n) return name as NodeJS.Signals;
  return null;
}

/**
 * Pids of this process's children that podsock started itself and watches (podman, conmon, helper
 * commands): never taken for strays of podman's (adoptStrays).
 */
const ownChildren = new Set<number>();
let subreaperUsers = 0;

/**
 * Whether podman can run detached here: the addon watches processes through pidfds and can make podsock
 * a subreaper. Otherwise `podman run` stays attached, as a child podsock waits for.
 */
export function detachAvailable(): boolean {
  return nativeSpawnAvailable();
}

/** From here until the matching endSubreaper(), orphans below podsock become its children (prctl(2)). */
function beginSubreaper(): void {
  if (subreaperUsers++ === 0) setChildSubreaper(true);
}

/**
 * The detached start is over: stop being a subreaper, and reap (without keeping the process alive for
 * them) whatever else of podman's was orphaned meanwhile: slirp4netns and rootlessport in rootless
 * mode, a conmon of a container `--replace` removed. They end with the container; unreaped they would
 * stay zombies as long as podsock lives.
 */
function endSubreaper(): void {
  if (subreaperUsers === 0 || --subreaperUsers > 0) return;
  try {
    setChildSubreaper(false);
  } catch {
    // Stays a subreaper: orphans keep coming here and are reaped at the next start's end.
  }
  adoptStrays();
}

/** This process's children, from /proc/self/task/TID/children (proc(5)). */
export function childPids(): number[] {
  const pids: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return pids;
  }
  for (const t of tasks) {
    try {
      for (const w of readFileSync(`/proc/self/task/${t}/children`, 'utf8').split(' ')) if (/^[1-9][0-9]*$/.test(w)) pids.push(Number(w));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return pids;
}

function adoptStrays(): void {
  for (const pid of childPids()) {
    if (ownChildren.has(pid)) continue;
    ownChildren.add(pid);
    try {
      adoptProcess(pid, () => ownChildren.delete(pid), { keepAlive: false });
    } catch {
      ownChildren.delete(pid); // reaped meanwhile, or not ours after all
    }
  }
}

/**
 * Start `podman run`. With `fds` (handover) they are placed at 3.. in the child with LISTEN_PID set to
 * podman's own pid. stdout/stderr are inherited, so podman's own messages and (with
 * --log-driver=passthrough) the container's output reach the journal. Started by the addon
 * (spawnProcess, which also sets LISTEN_PID) where the kernel allows, else by child_process through
 * the shell trampoline. `watch.detached`: the command has `-d` and `--conmon-pidfile`; podsock is a
 * subreaper while podman runs, so that the conmon podman leaves behind becomes podsock's child and its
 * exit status (the container's) is podsock's to read, with no podman process kept alive.
 */
export function startRun(p: Podman, cmd: RunCommand, fds: readonly number[], watch: RunWatch = { detached: false }): RunningContainer {
  const env = { ...p.env, ...cmd.env };
  const { finish, exited } = settleOnce();
  if (nativeSpawnAvailable()) {
    if (watch.detached) beginSubreaper();
    try {
      // The addon sets LISTEN_PID in the child itself: no shell trampoline.
      const start = (onExit: (code: number | null, signal: number | null) => void): NativeProcess =>
        spawnProcess(p.binary, [p.binary, ...cmd.args], env, [-1, p.stdoutFd ?? 1, 2, ...fds], onExit, { listenPid: fds.length > 0 });
      return watch.detached ? fromDetached(start, watch.conmonPidfile, finish, exited) : fromNative(start, finish, exited);
    } catch {
      if (watch.detached) endSubreaper();
      // A failed exec (no /bin/sh, EAGAIN): report it as podman's failure to start, like child_process.
      finish({ code: 127, signal: null });
      return { pid: undefined, kill: () => false, exited };
    }
  }
  const { file, args } = fds.length > 0 ? trampoline(p.binary, cmd.args) : { file: p.binary, args: cmd.args };
  const stdio: Array<'ignore' | 'inherit' | number> = ['ignore', p.stdoutFd ?? 'inherit', 'inherit', ...fds];
  const child = childProcess().spawn(file, args, { env, stdio, detached: false });
  child.once('exit', (code, signal) => finish({ code, signal }));
  // spawn failure (ENOENT of /bin/sh, EAGAIN): report as podman's failure to start.
  child.once('error', () => finish({ code: 127, signal: null }));
  return { pid: child.pid, kill: (sig) => child.kill(sig), exited };
}

/**
 * Take over the `podman run` that podsock-launch started before podsock (runtime/prestart.ts) as if
 * startRun() had started it; null when `pid` is not a child of this process waiting to be watched.
 * podsock-launch made this process a subreaper before it started podman (native/launch.c).
 */
export function adoptRun(pid: number, watch: RunWatch = { detached: false }): RunningContainer | null {
  const { finish, exited } = settleOnce();
  if (watch.detached) beginSubreaper();
  try {
    const start = (onExit: (code: number | null, signal: number | null) => void): NativeProcess => adoptProcess(pid, onExit);
    return watch.detached ? fromDetached(start, watch.conmonPidfile, finish, exited) : fromNative(start, finish, exited);
  } catch {
    if (watch.detached) endSubreaper();
    return null;
  }
}

function settleOnce(): { finish: (info: ExitInfo) => void; exited: Promise<ExitInfo> } {
  let finish!: (info: ExitInfo) => void;
  const exited = new Promise<ExitInfo>((resolve) => {
    let done = false;
    finish = (info) => {
      if (!done) {
        done = true;
        resolve(info);
      }
    };
  });
  return { finish, exited };
}

/** A process the addon watches (spawned or adopted) as a RunningContainer whose exit settles `exited` through `finish`. */
function fromNative(
  start: (onExit: (code: number | null, signal: number | null) => void) => NativeProcess,
  finish: (info: ExitInfo) => void,
  exited: Promise<ExitInfo>,
): RunningContainer {
  let pid = 0;
  const child = start((code, signal) => {
    ownChildren.delete(pid);
    finish({ code, signal: signal === null ? null : signalName(signal) });
  });
  pid = child.pid;
  ownChildren.add(pid);
  return { pid: child.pid, kill: (sig) => child.kill(signals()[sig]), exited };
}

/**
 * `podman run -d` (spawned or adopted) as a RunningContainer: podman's own failure settles `exited`;
 * once podman has exited 0, conmon (named by `--conmon-pidfile`, podsock's child by now) is watched
 * instead, and its exit status is the container's. conmon exits only after `podman container cleanup`
 * (and `--rm`) ran, so the status cannot be lost to the removal (conmon src/ctr_exit.c).
 */
function fromDetached(
  start: (onExit: (code: number | null, signal: number | null) => void) => NativeProcess,
  conmonPidfile: string,
  finish: (info: ExitInfo) => void,
  exited: Promise<ExitInfo>,
): RunningContainer {
  let target: NativeProcess | null = null;
  let podmanPid = 0;
  const podman = start((code, signal) => {
    ownChildren.delete(podmanPid);
    target = null;
    if (code !== 0) {
      endSubreaper();
      finish({ code, signal: signal === null ? null : signalName(signal) });
      return;
    }
    const conmonPid = readPidfile(conmonPidfile);
    let why = `podman did not write conmon's pid to ${q(conmonPidfile)}`;
    if (conmonPid !== null) {
      ownChildren.add(conmonPid);
      try {
        target = adoptProcess(conmonPid, (c, s) => {
          ownChildren.delete(conmonPid);
          target = null;
          finish({ code: c, signal: s === null ? null : signalName(s) });
        });
      } catch (err) {
        ownChildren.delete(conmonPid);
        why = `conmon (pid ${conmonPid}) is not a child of podsock: ${(err as Error).message}`;
      }
    }
    endSubreaper();
    if (target === null) finish({ code: null, signal: null, lost: why });
  });
  podmanPid = podman.pid;
  ownChildren.add(podmanPid);
  target = podman;
  return { pid: podman.pid, kill: (sig) => target?.kill(signals()[sig]) ?? false, exited };
}

/**
 * Stop a podman podsock-launch started that podsock will not use: SIGKILL, then wait for it. What it
 * created is replaced by podsock's own `podman run --replace`.
 */
export async function discardPrestart(pre: { pid: number }): Promise<void> {
  const run = adoptRun(pre.pid);
  if (run === null) return; // not a child of ours (any more): nothing of ours to stop
  run.kill('SIGKILL');
  await run.exited;
}

/** Most output podsock keeps from one helper command, per stream (podman's answers are a few lines). */
const HELPER_OUTPUT_MAX = 1024 * 1024;
const HELPER_TIMEOUT_MS = 120_000;

/**
 * Run one podman helper command to completion with podsock's scrubbed environment: stdout and stderr
 * captured (each bounded to HELPER_OUTPUT_MAX), killed after HELPER_TIMEOUT_MS or when `signal`
 * aborts. Never rejects: a spawn failure or a kill is a non-zero exitCode with the reason in stderr.
 * Plain child_process, not execa: importing execa costs a cold start more than a hundred milliseconds.
 */
function helper(p: Podman, args: string[], signal?: AbortSignal): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sizes = { out: 0, err: 0 };
    let settled = false;
    let note = '';
    const child = childProcess().spawn(p.binary, args, { env: p.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (pid !== undefined) ownChildren.add(pid);
    const keep = (into: Buffer[], key: 'out' | 'err') => (chunk: Buffer): void => {
      const room = HELPER_OUTPUT_MAX - sizes[key];
      if (room <= 0) return;
      into.push(room >= chunk.length ? chunk : chunk.subarray(0, room));
      sizes[key] += Math.min(room, chunk.length);
    };
    child.stdout.on('data', keep(out, 'out'));
    child.stderr.on('data', keep(err, 'err'));
    const kill = (why: string): void => {
      note = why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`killed after ${HELPER_TIMEOUT_MS / 1000} s`), HELPER_TIMEOUT_MS);
    const onAbort = (): void => kill('cancelled');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted === true) onAbort();
    const finish = (exitCode: number): void => {
      if (settled) return;
      settled = true;
      if (pid !== undefined) ownChildren.delete(pid);
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({ exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: note === '' ? stderr : `${stderr}${stderr === '' || stderr.endsWith('\n') ? '' : '\n'}podman ${args[0] ?? ''} ${note}` });
    };
    child.once('error', (e) => {
      note = `could not start: ${e.message}`;
      finish(127);
    });
    child.once('close', (code) => finish(code ?? 1));
  });
}

/** Run an arbitrary podman command (healthcheck, inspect) with podsock's scrubbed environment. */
export function podmanCommand(p: Podman, args: string[], signal?: AbortSignal): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return helper(p, args, signal);
}

/** Read the container id podman wrote, or null when the file does not exist (yet) or is empty. */
export function readCid(cidfile: string): string | null {
  try {
    const id = readFileSync(cidfile, 'utf8').trim();
    return /^[0-9a-f]{12,64}$/.test(id) ? id : null;
  } catch {
    return null;
  }
}

/**
 * Resolve with the container id once podman has written the cidfile (inotify on its directory, no
 * polling), or null if `signal` aborts first.
 */
export function waitForCidfile(cidfile: string, signal: AbortSignal): Promise<string | null> {
  return waitForFile(cidfile, readCid, signal);
}

/**
 * Resolve with `read(file)` once it is not null, watching the file's directory with inotify (no
 * polling); null if `signal` aborts first. For files podman writes while it starts a container.
 */
export function waitForFile<T>(file: string, read: (file: string) => T | null, signal: AbortSignal): Promise<T | null> {
  return new Promise((resolve) => {
    const now = read(file);
    if (now !== null) return resolve(now);
    if (signal.aborted) return resolve(null);
    const name = basename(file);
    let watcher: ReturnType<typeof watch> | null = null;
    const done = (v: T | null): void => {
      watcher?.close();
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = (): void => done(null);
    signal.addEventListener('abort', onAbort, { once: true });
    watcher = watch(dirname(file), (_event, changed) => {
      if (changed === name) {
        const v = read(file);
        if (v !== null) done(v);
      }
    });
    watcher.on('error', () => done(read(file)));
    // The file may have appeared between the first read and the watch.
    const again = read(file);
    if (again !== null) done(again);
  });
}

/**
 * Stop and remove podsock's container: `podman stop --ignore -t N` then `podman rm -f --ignore`, by cid
 * when known, by name otherwise (the name is podsock's own `podsock-NAME`, never a user's container).
 */
export async function stopContainer(p: Podman, target: { cid: string | null; name: string }, timeoutSec: number): Promise<void> {
  const ref = target.cid ?? target.name;
  const stop = await helper(p, ['stop', '--ignore', `--time=${Math.max(0, Math.ceil(timeoutSec))}`, ref]);
  const rm = await helper(p, ['rm', '--force', '--ignore', ref]);
  if (stop.exitCode !== 0 && rm.exitCode !== 0) {
    throw new PodsockError('PODSOCK_ERR_PODMAN', `Failed to stop container ${q(target.name)}: ${rm.stderr.trim() || stop.stderr.trim()} (podman exit ${rm.exitCode})`);
  }
}

/**
 * Stop the container with no grace period, synchronously (for the second SIGTERM, right before exit):
 * `podman stop --ignore --time=0`, bounded to 10 s.
 */
export function killContainerNow(p: Podman, name: string): void {
  childProcess().spawnSync(p.binary, ['stop', '--ignore', '--time=0', name], { env: p.env, stdio: 'ignore', timeout: 10_000 });
}

/** Whether `image` is present in local storage (`podman image exists`). */
export async function imageExists(p: Podman, image: string): Promise<boolean> {
  return (await helper(p, ['image', 'exists', image])).exitCode === 0;
}

/**
 * Whether `image` in local storage defines a health check (its HEALTHCHECK, which podman keeps only
 * from images in docker format: buildah drops it from OCI images with "HEALTHCHECK is not supported
 * for OCI image format"); null when podman cannot say (the image is missing, podman failed).
 */
export async function imageHasHealthcheck(p: Podman, image: string): Promise<boolean | null> {
  const r = await helper(p, ['image', 'inspect', '--format', '{{json .HealthCheck}}', image]);
  if (r.exitCode !== 0) return null;
  const v = r.stdout.trim();
  if (v === 'null' || v === '') return false;
  try {
    const hc = JSON.parse(v) as { Test?: unknown } | null;
    // ["NONE"] disables an inherited check (Dockerfile HEALTHCHECK NONE).
    return hc !== null && Array.isArray(hc.Test) && hc.Test.length > 0 && hc.Test[0] !== 'NONE';
  } catch {
    return null;
  }
}

/** The host port podman published for `containerPort/tcp` (`podman port`), e.g. 127.0.0.1:41234 → 41234. */
export async function publishedPort(p: Podman, cid: string, containerPort: number): Promise<number> {
  const r = await helper(p, ['port', cid, `${containerPort}/tcp`]);
  const m = /:(\d+)\s*$/m.exec(r.stdout);
  if (r.exitCode !== 0 || m === null) {
    throw new PodsockError('PODSOCK_ERR_PODMAN', `Cannot read the published port of container port ${containerPort}: ${r.stderr.trim() || r.stdout.trim()} (podman exit ${r.exitCode})`);
  }
  return Number(m[1]);
}
