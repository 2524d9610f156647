/**
 * podsock's own start: from the exec of `podsock run` to the moment it spawns podman, against the
 * time `node -e 0` takes from exec to exit. Both are started the way systemd starts a
 * socket-activated service: a listening socket at fd 3, LISTEN_FDS=1, and LISTEN_PID set to the
 * process's own pid by a `/bin/sh` trampoline that then execs node (the same trampoline for both).
 *
 * podsock runs the benchmark's handover .container file with PODSOCK_PODMAN pointing at a stub
 * that appends a wall-clock timestamp (`date +%s%N`) and its arguments to a file and exits 1; podsock
 * then fails its start and exits, and no container is created. What follows podsock's spawn() (its
 * `/bin/sh` trampoline for podman, the stub's shell, `date`) is not podsock's start; stubSample()
 * measures that chain alone, started the same way, so the summary can subtract it.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** The shell line that sets LISTEN_PID to its own pid and execs "$0" "$@" (the pid stays the same). */
const TRAMPOLINE = 'export LISTEN_PID=$$; exec "$0" "$@"';
/** A podsock that does not reach podman within this is stuck, not slow. */
const SAMPLE_TIMEOUT_MS = 30_000;

export interface OwnStartContext {
  node: string;
  podsockMain: string;
  /** podsock's handover .container file. */
  config: string;
  /** The service name podsock runs as. */
  name: string;
  /** A private directory for the stub, its stamps and podsock's runtime directory. */
  dir: string;
  env: NodeJS.ProcessEnv;
}

/** A listening loopback socket whose fd the children inherit at 3; close it when done. */
export async function listeningSocket(): Promise<{ fd: number; close(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  // Node keeps the fd of a listening server on its libuv handle; stdio can pass a raw fd only.
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    server.close();
    throw new Error('Cannot get the fd of a listening net.Server on this Node version');
  }
  return { fd, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Write the podman stub into `ctx.dir`; returns its path and the stamp file's. */
export function writeStub(dir: string): { stub: string; stamps: string } {
  mkdirSync(dir, { recursive: true });
  const stub = join(dir, 'podman-stub');
  const stamps = join(dir, 'podman-stamps');
  writeFileSync(stub, `#!/bin/sh\nprintf '%s %s\\n' "$(date +%s%N)" "$1" >>'${stamps}'\nexit 1\n`);
  chmodSync(stub, 0o755);
  return { stub, stamps };
}

/** Spawn `argv` through the trampoline with `fd` at 3; resolves with the spawn time (wall clock, ms) and the exit time (monotonic gap, ms). */
function spawnActivated(argv: readonly string[], fd: number, env: NodeJS.ProcessEnv): Promise<{ t0Wall: number; elapsed: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0Wall = performance.timeOrigin + performance.now();
    const t0 = process.hrtime.bigint();
    const child = spawn('/bin/sh', ['-c', TRAMPOLINE, ...argv], { env: { ...env, LISTEN_FDS: '1' }, stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
    const timer = setTimeout(() => child.kill('SIGKILL'), SAMPLE_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', () => {
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      resolve({ t0Wall, elapsed, stderr });
    });
  });
}

/** Milliseconds from spawn to the stub's stamp when the trampoline execs the stub itself. */
export async function stubSample(ctx: OwnStartContext, fd: number, stub: { stub: string; stamps: string }): Promise<number> {
  writeFileSync(stub.stamps, '');
  const r = await spawnActivated([stub.stub, 'run'], fd, ctx.env);
  return stampOf(stub.stamps, r);
}

/** The wall-clock ms between the spawn and the first stamp, which must be the stub's `run`. */
function stampOf(stamps: string, r: { t0Wall: number; stderr: string }): number {
  const lines = readFileSync(stamps, 'utf8').split('\n').filter((l) => l !== '');
  const first = lines[0]?.split(' ');
  if (first === undefined || first[1] !== 'run') {
    throw new Error(`podsock did not start with 'podman run' (stub saw: '${lines.join('; ')}'): ${r.stderr.trim()}`);
  }
  return Number(BigInt(first[0] ?? '0') / 1000n) / 1000 - r.t0Wall;
}

/** One `node -e 0`: milliseconds from spawn to exit. */
export async function nodeBareSample(ctx: OwnStartContext, fd: number): Promise<number> {
  return (await spawnActivated([ctx.node, '-e', '0'], fd, ctx.env)).elapsed;
}

/**
 * One podsock start: milliseconds from spawn to the stub's `run` stamp. Throws, with podsock's
 * stderr, when podsock never ran `podman run`.
 */
export async function podsockStartSample(ctx: OwnStartContext, fd: number, stub: { stub: string; stamps: string }): Promise<number> {
  writeFileSync(stub.stamps, '');
  const env: NodeJS.ProcessEnv = { ...ctx.env, PODSOCK_PODMAN: stub.stub, RUNTIME_DIRECTORY: join(ctx.dir, 'runtime') };
  delete env.NOTIFY_SOCKET;
  const r = await spawnActivated([ctx.node, ctx.podsockMain, 'run', ctx.name, '--config', ctx.config], fd, env);
  return stampOf(stub.stamps, r);
}
