/**
 * Helpers for the end-to-end tests: the facts scripts/test-host.sh recorded about this machine
 * (.test-host/env.json), and small wrappers for systemctl --user, podman and HTTP that every e2e
 * test needs. All e2e files share one systemd user manager and one podman store, so names come from
 * uniqueName() and every resource is removed by a teardown registered right after it is created.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Test } from 'tap';

/** The repository's root directory. */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What the e2e tests need to know about the machine; see scripts/test-host.sh. */
export interface HostEnv {
  /** The systemd user manager's runtime directory (`systemctl --user` talks to `<this>/systemd/private`). */
  xdgRuntimeDir: string;
  /** A containers.conf every podman call must use, or null when podman's defaults work here. */
  containersConf: string | null;
  /** Where test units go: `<xdgRuntimeDir>/systemd/user` (runtime units, gone at reboot). */
  unitDir: string;
  /** The fixture image, e.g. `localhost/podsock-fixture:latest`. */
  fixtureImage: string;
  /** Arguments every `podman run` of the fixture image needs, e.g. `['-v', '/usr:/usr:ro']`. */
  podmanRunArgs: string[];
  /** `<repo>/.test-host`: logs and scratch files of the tests live here. */
  stateDir: string;
}

interface EnvJson {
  XDG_RUNTIME_DIR: string;
  CONTAINERS_CONF: string | null;
  unitDir: string;
  stateDir: string;
  systemdUser: boolean;
  systemdUserReason: string | null;
  podman: boolean;
  podmanReason: string | null;
  fixtureImage: string;
  podmanRunArgs: string[];
}

/** Which parts of the test host a test file needs; both by default. */
export interface HostNeeds {
  systemd?: boolean;
  podman?: boolean;
}

/**
 * Reads `.test-host/env.json` (written by `npm test`'s pretest, scripts/test-host.sh) and returns
 * the host's facts. When something the test needs is missing (no env.json, no systemd user manager,
 * no podman), it returns null after reporting why: with `CI=true` as a failure (`t.fail`), so CI
 * cannot pass without running the e2e tests; otherwise as a skip, for a laptop without podman.
 * The caller ends the test file early on null.
 */
export function hostEnv(t: Test, needs: HostNeeds = {}): HostEnv | null {
  const file = join(repoRoot, '.test-host', 'env.json');
  let facts: EnvJson | undefined;
  let reason: string | undefined;
  try {
    facts = JSON.parse(readFileSync(file, 'utf8')) as EnvJson;
  } catch (err) {
    reason = `cannot read '${file}' (${(err as Error).message}); run 'bash scripts/test-host.sh'`;
  }
  if (facts !== undefined) {
    if ((needs.systemd ?? true) && !facts.systemdUser) {
      reason = `no systemd user manager: ${facts.systemdUserReason ?? 'unknown reason'}`;
    } else if ((needs.podman ?? true) && !facts.podman) {
      reason = `no usable podman: ${facts.podmanReason ?? 'unknown reason'}`;
    }
  }
  if (facts === undefined || reason !== undefined) {
    if (process.env.CI === 'true') t.fail(`test host not ready: ${reason}`);
    else t.pass('test host not ready', { skip: reason });
    return null;
  }
  return {
    xdgRuntimeDir: facts.XDG_RUNTIME_DIR,
    containersConf: facts.CONTAINERS_CONF,
    unitDir: facts.unitDir,
    fixtureImage: facts.fixtureImage,
    podmanRunArgs: [...facts.podmanRunArgs],
    stateDir: facts.stateDir,
  };
}

/**
 * The environment for a child process of a test (systemctl, podman, curl, podsock itself): this
 * process's environment with the host's XDG_RUNTIME_DIR and CONTAINERS_CONF, and without what
 * must not leak into it: the socket-activation and notify variables of whoever started the tests
 * (podman hands on fds 3.. whenever LISTEN_FDS is set: containers/podman issue 20968), a session bus
 * that is not the test manager's, and NODE_EXTRA_CA_CERTS (which
 * slows every Node start by 50-70 ms). `extra` is applied last.
 */
export function childEnv(h: HostEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('LISTEN_')) delete env[key];
  }
  delete env.NOTIFY_SOCKET;
  delete env.DBUS_SESSION_BUS_ADDRESS;
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  env.XDG_RUNTIME_DIR = h.xdgRuntimeDir;
  if (h.containersConf === null) delete env.CONTAINERS_CONF;
  else env.CONTAINERS_CONF = h.containersConf;
  return { ...env, ...extra };
}

/** The outcome of a command; `exitCode` is -1 when it was killed by a signal. */
export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

// Generous: the machines are shared and podman can be slow under load.
const COMMAND_TIMEOUT_MS = 120_000;

async function run(h: HostEnv, file: string, args: string[]): Promise<CommandResult> {
  const result = await execa(file, args, {
    env: childEnv(h),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: COMMAND_TIMEOUT_MS,
  });
  if (result.timedOut) {
    throw new Error(`'${file} ${args.join(' ')}' did not finish within ${COMMAND_TIMEOUT_MS} ms`);
  }
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}

/** Runs `systemctl --user ARGS` against the test host's user manager. Never throws on a non-zero exit. */
export async function systemctl(h: HostEnv, ...args: string[]): Promise<CommandResult> {
  return run(h, 'systemctl', ['--user', ...args]);
}

/** Runs `podman ARGS` with the test host's configuration. Never throws on a non-zero exit. */
export async function podman(h: HostEnv, ...args: string[]): Promise<CommandResult> {
  return run(h, 'podman', args);
}

async function mustSystemctl(h: HostEnv, ...args: string[]): Promise<void> {
  const r = await systemctl(h, ...args);
  if (r.exitCode !== 0) {
    throw new Error(`'systemctl --user ${args.join(' ')}' exited ${r.exitCode}: ${r.stderr.trim()}`);
  }
}

/**
 * Writes `units` (file name → unit file text) to the user manager's unit directory and reloads it.
 * Registers a teardown, right away, that stops the units, clears their failed state, removes the
 * files and reloads again, so a failing test leaves nothing behind.
 */
export async function installUnits(t: Test, h: HostEnv, units: Record<string, string>): Promise<void> {
  const names = Object.keys(units);
  for (const name of names) {
    if (!/^[A-Za-z0-9:_.@-]+\.(service|socket|target|timer|path)$/.test(name)) {
      throw new Error(`'${name}' is not a unit file name`);
    }
  }
  mkdirSync(h.unitDir, { recursive: true });
  t.teardown(async () => {
    // One transaction stops sockets and services together, so no socket re-activates a service.
    await systemctl(h, 'stop', ...names);
    await systemctl(h, 'reset-failed', ...names);
    await Promise.all(names.map((name) => rm(join(h.unitDir, name), { force: true })));
    await systemctl(h, 'daemon-reload');
  });
  await Promise.all(names.map((name) => writeFile(join(h.unitDir, name), units[name] ?? '')));
  await mustSystemctl(h, 'daemon-reload');
}

/** `systemctl --user show -p P1 -p P2 … UNIT` as an object; every requested property is present. */
export async function unitProps(h: HostEnv, unit: string, props: string[]): Promise<Record<string, string>> {
  const r = await systemctl(h, 'show', ...props.flatMap((p) => ['-p', p]), unit);
  if (r.exitCode !== 0) throw new Error(`'systemctl --user show ${unit}' exited ${r.exitCode}: ${r.stderr.trim()}`);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  for (const p of props) out[p] ??= '';
  return out;
}

/**
 * Calls `fn` every `intervalMs` until it returns a truthy value, and returns that value. For
 * things that cannot be awaited as events (a unit's state, a container's existence). A throw from
 * `fn` counts as "not yet". After `timeoutMs` it throws an Error naming `what` and the last value
 * or error seen.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${shown}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

/** True when a container (in any state) of that name exists. */
export async function containerExists(h: HostEnv, name: string): Promise<boolean> {
  const r = await podman(h, 'container', 'exists', name);
  if (r.exitCode === 0) return true;
  if (r.exitCode === 1) return false;
  throw new Error(`'podman container exists ${name}' exited ${r.exitCode}: ${r.stderr.trim()}`);
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it; there is a small race). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Limit on a response body: e2e responses are small, a runaway peer must not exhaust memory. */
const MAX_BODY = 16 * 1024 * 1024;

/**
 * One HTTP GET on a fresh connection (no keep-alive agent). Resolves with the status and the body
 * as UTF-8; rejects on a connection error, a body over 16 MiB, or when the whole exchange takes
 * longer than `timeoutMs` (default 10 s).
 */
export async function httpGet(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) req.destroy(new Error(`response body of '${url}' is over ${MAX_BODY} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    // `timeout` above only covers socket inactivity; this bounds the whole exchange.
    const timer = setTimeout(() => req.destroy(new Error(`GET '${url}' took longer than ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('timeout', () => req.destroy(new Error(`GET '${url}': no data for ${timeoutMs} ms`)));
  });
}

let counter = 0;
const runTag = `${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;

/**
 * A name unique to this test run and call, usable as a unit name and a container name
 * (`[a-z0-9-]`, at most 63 characters), e.g. `psa-1x3k9z-2`. Other e2e runs may share the user
 * manager and podman store, hence the pid and random part.
 */
export function uniqueName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 't';
  return `${clean.slice(0, 40)}-${runTag}-${++counter}`;
}

/**
 * A log file path in the state directory for `StandardOutput=append:` / `StandardError=append:`
 * (journald does not run on the test machines). The directory exists after this call.
 */
export function logFile(h: HostEnv, name: string): string {
  const dir = join(h.stateDir, 'logs', 'e2e');
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.log`);
}

/** The contents of a log file, or '' when it does not exist (yet). */
export function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Every descendant of `root` (by the parent pid in /proc/PID/stat), with its comm. */
export function descendants(root: number): Array<{ pid: number; comm: string }> {
  const children = new Map<number, Array<{ pid: number; comm: string }>>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push({ pid: Number(entry), comm });
    children.set(ppid, list);
  }
  const out: Array<{ pid: number; comm: string }> = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}
