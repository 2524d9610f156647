/**
 * The benchmark's contact with the machine: the environment for podman, free ports, child
 * processes with a bounded stop, an HTTP readiness probe and /proc counters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { statCpuTicks, statusKiB } from './stats.js';

/** The repository's root directory. */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The environment for every child: the caller's, plus CONTAINERS_CONF from .test-host/env.json when
 * the test host recorded one and the caller set none (podman on the project's machines needs it,
 * scripts/lib/podman-conf.sh), minus NODE_EXTRA_CA_CERTS, which a systemd service does not have and which
 * costs every Node process start-up time and resident memory.
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const file = join(repoRoot, '.test-host', 'env.json');
  if (env.CONTAINERS_CONF === undefined && existsSync(file)) {
    const conf = (JSON.parse(readFileSync(file, 'utf8')) as { CONTAINERS_CONF?: string | null }).CONTAINERS_CONF;
    if (typeof conf === 'string' && conf !== '') env.CONTAINERS_CONF = conf;
  }
  return env;
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

/** Run a command to completion; resolves with its stdout, rejects with its stderr on a non-zero exit or after `timeoutMs`. */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; inherit?: boolean } = {}): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { env: opts.env ?? childEnv(), stdio: ['ignore', 'pipe', opts.inherit ? 'inherit' : 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) res(out);
      else rej(new Error(`'${cmd} ${args.join(' ')}' failed (${signal ?? `exit ${code}`}): ${err.trim() || out.trim()}`));
    });
  });
}

/** A long-running child whose stderr is kept (the last 4 KiB) for error messages. */
export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last 4 KiB of the child's stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export function startDaemon(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = childEnv()): Daemon {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`Cannot start '${cmd}'`);
  let tail = '';
  const keep = (d: string): void => {
    tail = (tail + d).slice(-4096);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((res) => child.once('close', () => res()));
  return {
    child,
    pid: child.pid,
    output: () => tail,
    async stop(graceMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One HTTP GET; resolves with the status code and the body's length. */
function httpGet(url: string, timeoutMs: number): Promise<{ status: number; bytes: number }> {
  return new Promise((res, rej) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (resp) => {
      let bytes = 0;
      resp.on('data', (d: Buffer) => (bytes += d.length));
      resp.on('end', () => res({ status: resp.statusCode ?? 0, bytes }));
      resp.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', rej);
  });
}

/**
 * Wait until `url` answers 200 with `bytes` bytes, retrying with a doubling backoff (50 ms to 1 s)
 * for at most `deadlineMs`; stops early when `alive()` turns false. Throws with the last error.
 */
export async function waitHttp(url: string, bytes: number, deadlineMs: number, alive: () => boolean = () => true): Promise<void> {
  const end = Date.now() + deadlineMs;
  let delay = 50;
  let last = '';
  while (Date.now() < end && alive()) {
    try {
      const r = await httpGet(url, Math.max(1000, end - Date.now()));
      if (r.status === 200 && r.bytes === bytes) return;
      last = `status ${r.status}, ${r.bytes} bytes`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(delay);
    delay = Math.min(1000, delay * 2);
  }
  throw new Error(`'${url}' did not answer 200 with ${bytes} bytes${alive() ? ` within ${deadlineMs} ms` : ' (its process exited)'}: ${last}`);
}

/** Clock ticks per second for /proc/PID/stat (sysconf(_SC_CLK_TCK); 100 on every Linux we run on). */
let clkTck: number | undefined;
export async function ticksPerSecond(): Promise<number> {
  clkTck ??= Number((await run('getconf', ['CLK_TCK'])).trim()) || 100;
  return clkTck;
}

/** CPU seconds (user + system) the process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  return statCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / (await ticksPerSecond());
}

/** Peak and current resident set size of a process in KiB (VmHWM, VmRSS of /proc/PID/status). */
export function memoryKiB(pid: number): { peak: number | null; now: number | null } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { peak: statusKiB(status, 'VmHWM'), now: statusKiB(status, 'VmRSS') };
}

/** The last 20 lines of a service's log, for an error message; each cut at 300 characters (a stack trace into bundled code holds whole minified lines). */
export function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-20)
      .map((l) => (l.length > 300 ? `${l.slice(0, 300)}...` : l))
      .join('\n')
      .trim();
  } catch {
    return '(no log)';
  }
}
