/**
 * The things the benchmark measures, each a TCP port on 127.0.0.1 in front of an nginx container
 * of localhost/podsock-bench-nginx:
 *
 * - direct: the backend container's published port itself;
 * - proxyd: systemd-socket-proxyd, socket-activated by systemd-socket-activate (which execs it, so
 *   the pid is the proxy's), forwarding to the backend;
 * - podsock: `podsock run --mode proxy` (the bin, dist/bin/podsock.cjs), which starts its own container of the same
 *   image (same configuration, a second container) and proxies to it: the real product;
 * - podsock-poll: the same with PODSOCK_PROXY_PIPE=poll, i.e. the native relay without io_uring
 *   (recv/send woken by epoll), what podsock does where io_uring is missing or forbidden;
 * - podsock-class: the Proxy class of dist/proxy/proxy.js in a minimal Node process, forwarding to
 *   the same backend container as direct and proxyd: podsock's data path alone;
 * - naive: a ten-line net.createServer + pipe() in Node, the reference point of the issue.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { childEnv, freePort, repoRoot, run, startDaemon, waitHttp, type Daemon } from './host.js';

export const VARIANTS = ['direct', 'proxyd', 'podsock', 'podsock-poll', 'podsock-class', 'naive'] as const;
export type VariantName = (typeof VARIANTS)[number];

/** A running variant: where to send the load, and which process to watch (null for direct). */
export interface Variant {
  name: VariantName;
  port: number;
  pid: number | null;
  stop(): Promise<void>;
}

export const PROXYD = '/lib/systemd/systemd-socket-proxyd';
const SMALL = { path: '/1k', bytes: 1024 };
const FIRST_ANSWER_MS = 120_000;

/** Start the shared backend container, publishing nginx's port 8080 on a free loopback port. */
export async function startBackend(image: string): Promise<Variant> {
  const port = await freePort();
  const name = `podsock-bench-backend-${process.pid}`;
  await run('podman', ['run', '-d', '--rm', '--name', name, '-p', `127.0.0.1:${port}:8080`, image]);
  const stop = async (): Promise<void> => {
    await run('podman', ['rm', '--force', '--time', '0', name]).catch(() => undefined);
  };
  try {
    await waitHttp(`http://127.0.0.1:${port}${SMALL.path}`, SMALL.bytes, FIRST_ANSWER_MS);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: 'direct', port, pid: null, stop };
}

/**
 * Start one proxy variant in front of `backendPort` (podsock starts its own backend from `image`).
 * `nodeArgs` go to the Node variants' node (e.g. --cpu-prof).
 */
export async function startVariant(name: Exclude<VariantName, 'direct'>, backendPort: number, image: string, nodeArgs: readonly string[] = []): Promise<Variant> {
  const port = await freePort();
  const daemon = spawnVariant(name, port, backendPort, image, nodeArgs);
  const alive = (): boolean => daemon.child.exitCode === null && daemon.child.signalCode === null;
  try {
    // The first connection activates proxyd and, for podsock, starts the container: wait for it.
    await waitHttp(`http://127.0.0.1:${port}${SMALL.path}`, SMALL.bytes, FIRST_ANSWER_MS, alive);
  } catch (err) {
    await daemon.stop();
    throw new Error(`${name} did not come up: ${(err as Error).message}\n${daemon.output().trim()}`);
  }
  return { name, port, pid: daemon.pid, stop: () => daemon.stop() };
}

function spawnVariant(name: Exclude<VariantName, 'direct'>, port: number, backendPort: number, image: string, nodeArgs: readonly string[]): Daemon {
  const env = childEnv();
  switch (name) {
    case 'proxyd':
      return startDaemon('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, PROXYD, `127.0.0.1:${backendPort}`], env);
    case 'podsock':
    case 'podsock-poll': {
      const main = join(repoRoot, 'dist', 'bin', 'podsock.cjs');
      if (!existsSync(main)) throw new Error(`'${main}' is missing: build first (npm run build)`);
      const service = `bench-${name === 'podsock' ? '' : 'poll-'}${process.pid}`;
      return startDaemon(
        process.execPath,
        [...nodeArgs, main, 'run', service, '--mode', 'proxy', '--backend', '8080', '--listen', `127.0.0.1:${port}`, '--idle-timeout', 'infinity', '--log-level', 'warn', '--', image],
        name === 'podsock' ? env : { ...env, PODSOCK_PROXY_PIPE: 'poll' },
      );
    }
    case 'podsock-class':
      return startDaemon(process.execPath, [...nodeArgs, '--input-type=module', '-e', PROXY_CLASS_MAIN], {
        ...env,
        BENCH_DIST: pathToFileURL(join(repoRoot, 'dist') + '/').href,
        BENCH_LISTEN_PORT: String(port),
        BENCH_BACKEND_PORT: String(backendPort),
      });
    case 'naive':
      return startDaemon(process.execPath, [...nodeArgs, '--input-type=module', '-e', NAIVE_MAIN], {
        ...env,
        BENCH_LISTEN_PORT: String(port),
        BENCH_BACKEND_PORT: String(backendPort),
      });
  }
}

/**
 * podsock's Proxy with the settings `podsock run` gives it by default (MaxConnections=4096) on a
 * socket bound the way `podsock run --listen` binds it, targets set at once (the backend is up).
 */
const PROXY_CLASS_MAIN = `
const dist = process.env.BENCH_DIST;
const { listenSocket } = await import(dist + 'native/fds.js');
const { Proxy } = await import(dist + 'proxy/proxy.js');
const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: Number(process.env.BENCH_LISTEN_PORT), backlog: 4096 });
const proxy = new Proxy({ listeners: [{ name: 'bench', fd }], maxConnections: 4096, maxPending: 4096 });
proxy.on('connectionError', (err) => console.error(err.message));
proxy.on('error', (err) => { console.error(err.message); process.exit(1); });
await proxy.start();
proxy.setTargets(() => ({ host: '127.0.0.1', port: Number(process.env.BENCH_BACKEND_PORT) }));
process.once('SIGTERM', () => { proxy.destroy(); process.exit(0); });
`;

/** The "naive Node pipe" of the issue: no limits, no half-close care, just pipe(). */
const NAIVE_MAIN = `
import net from 'node:net';
const backend = Number(process.env.BENCH_BACKEND_PORT);
net.createServer((client) => {
  const upstream = net.connect(backend, '127.0.0.1');
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(Number(process.env.BENCH_LISTEN_PORT), '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
`;
