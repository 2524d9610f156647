/**
 * The UDP benchmark's floor for a user-space proxy (udp-relay.c): compiled with `cc` for each run and
 * started as a daemon. See udp-relay.c for what it does and does not do.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, run, startDaemon, type Daemon } from './host.js';

/** Compile udp-relay.c into `dir`; the binary's path. */
export async function buildRelay(dir: string): Promise<string> {
  const out = join(dir, 'udp-relay');
  await run('cc', ['-O2', '-Wall', '-o', out, join(repoRoot, 'scripts', 'bench', 'udp-relay.c')]);
  return out;
}

/** Start the relay on 127.0.0.1:`port`, its upstream sockets in the network namespace `netns` (a
 * /proc/PID/ns/net path) connected to `host`:`targetPort`; resolves once it listens. */
export async function startRelay(binary: string, port: number, netns: string, host: string, targetPort: number): Promise<Daemon> {
  const d = startDaemon(binary, [String(port), netns, host, String(targetPort)]);
  const end = Date.now() + 10_000;
  while (!d.output().includes('ready')) {
    if (d.child.exitCode !== null || Date.now() > end) {
      await d.stop(0);
      throw new Error(`udp-relay did not start: ${d.output().trim() || 'no output'}`);
    }
    await sleep(20);
  }
  return d;
}
