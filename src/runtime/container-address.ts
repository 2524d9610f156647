/**
 * Reaching a proxy-mode container without publishing its port. Publishing (`-p 127.0.0.1:PORT:8080`)
 * makes podman set up a port mapping on every start; measured with podman 4.3.1 (root, default bridge
 * network, this machine) a `podman run --rm IMAGE true` took 600 ms without and 708 ms with one
 * `-p`, and the first request of a lazy start waits for all of it. Rootful podman's bridge network
 * routes the container's own address from the host, so podsock connects to CONTAINER_IP:PORT instead.
 * The address comes from the kernel: `--pidfile` names the container's first process, and
 * /proc/PID/net/fib_trie is the routing table of that process's network namespace, whose local
 * (`/32 host LOCAL`) entries are the container's addresses. Rootless containers sit behind a
 * user-space network that the host cannot route to, and a network the user chose may not be routed
 * either: both keep the published port.
 */
import { readFileSync } from 'node:fs';
import { PodsockError, q } from '../errors.js';

/** Options of `podman run` that choose the container's network (then podsock publishes as asked). */
const NETWORK_OPTION = /^--(network|net|pod)(=|$)/;

/** Whether proxy mode can reach the container by its own address: rootful, podman's default network. */
export function directBackendPossible(o: { rootless: boolean; podmanOptions: readonly string[] }): boolean {
  return !o.rootless && !o.podmanOptions.some((a) => NETWORK_OPTION.test(a));
}

/**
 * The local IPv4 addresses in a /proc/PID/net/fib_trie text, loopback excluded, in order of first
 * appearance. An address is local when its line (`|-- 10.88.0.5`) is followed by `/32 host LOCAL`.
 * Pure.
 */
export function parseLocalIPv4(fibTrie: string): string[] {
  const lines = fibTrie.split('\n');
  const found: string[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const m = /^[\s|+`-]*-- (\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\s*$/.exec(lines[i] ?? '');
    if (m === null) continue;
    const addr = m[1] as string;
    if (!/^\s*\/32 host LOCAL\s*$/.test(lines[i + 1] ?? '')) continue;
    if (addr.startsWith('127.') || found.includes(addr)) continue;
    found.push(addr);
  }
  return found;
}

/** The pid podman wrote to `pidfile`, or null while there is none (yet). */
export function readPidfile(pidfile: string): number | null {
  try {
    const text = readFileSync(pidfile, 'utf8').trim();
    return /^[1-9]\d{0,9}$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/**
 * The container's IPv4 address, from its first process (`pidfile`) and that process's network
 * namespace. Throws PODSOCK_ERR_PODMAN naming what was missing.
 */
export function containerIPv4(pidfile: string, containerName: string, procRoot = '/proc'): string {
  const pid = readPidfile(pidfile);
  if (pid === null) {
    throw new PodsockError('PODSOCK_ERR_PODMAN', `Cannot reach container ${q(containerName)}: podman wrote no container pid to ${q(pidfile)}`);
  }
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/net/fib_trie`, 'utf8');
  } catch (err) {
    throw new PodsockError('PODSOCK_ERR_PODMAN', `Cannot reach container ${q(containerName)}: cannot read its network (pid ${pid}): ${(err as Error).message}`, { cause: err });
  }
  const addr = parseLocalIPv4(text)[0];
  if (addr === undefined) {
    throw new PodsockError(
      'PODSOCK_ERR_PODMAN',
      `Cannot reach container ${q(containerName)}: it has no IPv4 address besides loopback (set Network= in the .container file to have podsock publish the port instead)`,
    );
  }
  return addr;
}
