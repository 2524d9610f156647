/**
 * Processes (native/spawn.c): start a child with vfork and exactly the fds and environment given, or
 * adopt one podsock-launch started, and watch it through a pidfd.
 */
import { binding, call, checkFd } from './addon.js';

declare const processHandleBrand: unique symbol;
type ProcessHandle = { readonly [processHandleBrand]: true };

interface SpawnBinding {
  spawnSupported(): boolean;
  spawnProcess(
    file: string,
    argv: string[],
    envp: string[],
    stdio: number[],
    onExit: (code: number, signal: number) => void,
    listenPid: boolean,
  ): { pid: number; handle: ProcessHandle };
  killProcess(handle: ProcessHandle, signal: number): boolean;
  adoptProcess(pid: number, onExit: (code: number, signal: number) => void, keepAlive: boolean): { pid: number; handle: ProcessHandle };
  setChildSubreaper(on: boolean): void;
}

/** A process started by spawnProcess. */
export interface NativeProcess {
  pid: number;
  /** Send `signal` (a number, os.constants.signals); false once the process has exited. */
  kill(signal: number): boolean;
}

/**
 * Whether spawnProcess works here: the addon loads and the kernel has pidfd_open (Linux 5.3 or later).
 * Callers fall back to child_process otherwise.
 */
export function nativeSpawnAvailable(): boolean {
  try {
    return binding<SpawnBinding>().spawnSupported();
  } catch {
    return false;
  }
}

/**
 * Start `file` with `argv` (argv[0] included) and exactly `env`, with fd i of the child taken from
 * stdio[i] (-1: /dev/null) and nothing else inherited, every signal at its default and none blocked.
 * vfork (no copy of podsock's page tables) instead of libuv's fork. `onExit`
 * runs once, with the exit status or the terminating signal number (the other one null). A failed
 * exec (ENOENT, EACCES) throws PODSOCK_ERR_NATIVE naming the file and the errno, without onExit.
 * `listenPid`: the child also gets LISTEN_PID=<its own pid> (sd_listen_fds(3)), set before its exec.
 */
export function spawnProcess(
  file: string,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  stdio: readonly number[],
  onExit: (code: number | null, signal: number | null) => void,
  options: { listenPid?: boolean } = {},
): NativeProcess {
  const envp: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) envp.push(`${k}=${v}`);
  for (const fd of stdio) if (fd !== -1) checkFd('spawn', fd);
  const started = call('spawn', file, (b: SpawnBinding) =>
    b.spawnProcess(file, [...argv], envp, [...stdio], (code, signal) => onExit(signal === 0 ? code : null, signal === 0 ? null : signal), options.listenPid === true),
  );
  return nativeProcess(started);
}

/**
 * Watch `pid`, a child this process already has (podman started by podsock-launch before it exec'd
 * Node), like a process spawnProcess started: `onExit` runs once with its status or signal. Throws
 * PODSOCK_ERR_NATIVE (ECHILD when it is not an unreaped child of this process).
 */
export function adoptProcess(pid: number, onExit: (code: number | null, signal: number | null) => void, options: { keepAlive?: boolean } = {}): NativeProcess {
  const started = call('adopt process', String(pid), (b: SpawnBinding) =>
    b.adoptProcess(pid, (code, signal) => onExit(signal === 0 ? code : null, signal === 0 ? null : signal), options.keepAlive !== false),
  );
  return nativeProcess(started);
}

/**
 * Turn PR_SET_CHILD_SUBREAPER (prctl(2)) on or off for this process: while on, processes orphaned below
 * podsock (conmon, which `podman run -d` double-forks) become podsock's children, so that their exit
 * status can be read. Throws PODSOCK_ERR_NATIVE.
 */
export function setChildSubreaper(on: boolean): void {
  call('set child subreaper', String(on), (b: SpawnBinding) => b.setChildSubreaper(on));
}

/** A spawned or adopted process as NativeProcess: signals go through its pidfd (killProcess). */
function nativeProcess(started: { pid: number; handle: ProcessHandle }): NativeProcess {
  return {
    pid: started.pid,
    kill: (signal) => call('signal process', String(started.pid), (b: SpawnBinding) => b.killProcess(started.handle, signal)),
  };
}
