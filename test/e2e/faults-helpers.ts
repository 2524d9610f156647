/**
 * Helpers shared by the fault tests (test/e2e/faults-*.test.ts): the fake podman, finding what is
 * left of a service's container, a connection left open across a fault, and the checks every fault
 * scenario ends with.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { Test } from 'tap';
import { containerExists, httpGet, podman, repoRoot, waitFor, type HostEnv } from './harness.js';
import { serviceState, type PodsockService } from './podsock-units.js';

/** test/fixtures/fake-podman.sh; see its header for FAKE_PODMAN's modes. */
export const fakePodman = join(repoRoot, 'test', 'fixtures', 'fake-podman.sh');

/**
 * Pids of processes that belong to the service's container: podman and conmon name it on their
 * command line, the fixture carries FIXTURE_NAME=<name> in its environment. Processes that exit
 * while being read are skipped.
 */
export function leftovers(name: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(`podsock-${name}\0`) || cmdline.includes(`podsock-${name}.`) || environ.includes(`\0FIXTURE_NAME=${name}\0`)) {
        found.push(Number(entry));
      }
    } catch {
      // gone, or a kernel thread
    }
  }
  return found.filter((pid) => pid !== process.pid);
}

/**
 * The notify sockets (`…/podsock-XXXXXX/notify.sock`) that process `pid` has bound: its fds name the
 * sockets' inodes (socket:[INODE]), /proc/net/unix their paths (proc(5)).
 */
export function notifySocketsOf(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m !== null) inodes.add(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  const paths: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const path = cols[7];
    if (path !== undefined && inodes.has(cols[6] ?? '') && /\/podsock-[A-Za-z0-9]{6}\/notify\.sock$/.test(path)) paths.push(path);
  }
  return paths.sort();
}

/** "pid: command line" of a process, for messages. */
function describe(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 300)}`;
  } catch {
    return `${pid}: (gone)`;
  }
}

/** Whether the container is running (false when it does not exist). */
export async function running(h: HostEnv, container: string): Promise<boolean> {
  const r = await podman(h, 'inspect', '--format', '{{.State.Running}}', container);
  return r.exitCode === 0 && r.stdout.trim() === 'true';
}

/**
 * A connection to the fixture on 127.0.0.1:`port` that has had one echo exchange ('ping'; the
 * fixture echoes what is not an HTTP request line) and is still open, destroyed at teardown, with a
 * promise of its close. Its later errors are ignored: the fault under test is expected to end it.
 */
export async function openEchoConnection(t: Test, port: number): Promise<{ conn: net.Socket; closed: Promise<void> }> {
  const conn = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    t.teardown(() => s.destroy());
    s.on('connect', () => s.write('ping'));
    s.once('data', () => resolve(s));
    s.once('error', reject);
  });
  conn.on('error', () => undefined);
  return { conn, closed: new Promise<void>((resolve) => conn.once('close', () => resolve())) };
}

/** `closed` of openEchoConnection, or a rejection 'the open connection was not closed' after `timeoutMs` from now. */
export function closedWithin(closed: Promise<void>, timeoutMs: number): Promise<unknown> {
  return Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the open connection was not closed')), timeoutMs).unref())]);
}

/** After a stop: the unit is down, no container and no process of it is left, and a new connection is served. */
export async function checkAfterStop(t: Test, h: HostEnv, svc: PodsockService, states: string[]): Promise<void> {
  const s = await serviceState(h, svc.name);
  t.ok(states.includes(s.ActiveState ?? ''), `the service is ${states.join(' or ')} (${s.ActiveState}, result ${s.Result}, status ${s.ExecMainStatus})`);
  t.equal(s.MainPID, '0', 'podsock is gone');
  t.notOk(await containerExists(h, svc.containerName), 'no container, right after the stop');
  // A process can take a moment to be reaped after its cgroup was killed.
  const left = await waitFor('no process of the container', async () => {
    const pids = leftovers(svc.name);
    return pids.length === 0 ? [] : false;
  }, 10_000, 200).catch(() => leftovers(svc.name));
  t.same(left.map(describe), [], 'no podman, conmon or container process left');
  const r = await httpGet(svc.url('/next'), 60_000);
  t.equal(r.status, 200);
  t.match(r.body, /path=\/next /, 'the next connection is served by a fresh activation');
}
