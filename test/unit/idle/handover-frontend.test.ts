import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { HandoverFrontend, watchedSockets } from '../../../src/idle/handover-frontend.js';
import { readConnectionCount } from '../../../src/idle/kernel-connections.js';
import type { ListenFd } from '../../../src/sd/listen-fds.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { bindForgedUnixRow } from '../../helpers/forged-unix-row.js';

/** A unix listener held by this process, as run.ts describes an inherited one, with `clients` queued. */
async function unixListener(t: Test, clients: number): Promise<{ path: string; listener: ListenFd }> {
  // A short directory: the forged row (bindForgedUnixRow) has to fit in a socket name with the path.
  const dir = mkdtempSync('/tmp/podsock-hf-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'app.sock');
  const fd = listenSocket({ kind: 'unix', path, backlog: 16 });
  t.teardown(() => closeFd(fd));
  for (let i = 0; i < clients; i++) {
    const socket = net.connect({ path });
    t.teardown(() => socket.destroy());
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  }
  return { path, listener: { ...inspectFd(fd), fd, name: 'app' } };
}

/** The first count the frontend reports once serving. */
async function firstCount(t: Test, frontend: HandoverFrontend): Promise<number> {
  t.teardown(() => frontend.close());
  const count = new Promise<number>((resolve) => frontend.onActivity(resolve));
  frontend.ready([]);
  const n = await count;
  await frontend.close();
  return n;
}

void t.test('a socket name that forges a /proc/net/unix row does not count as a connection', async (t) => {
  const { path, listener } = await unixListener(t, 2);
  await bindForgedUnixRow(t, path);
  t.equal(await readConnectionCount([{ kind: 'unix', path }]), 3, '/proc/net/unix shows the forged row as a third connection');
  const n = await firstCount(t, new HandoverFrontend({ listeners: [listener], pollMs: 20, onError: (err) => t.fail(String(err)) }));
  t.equal(n, 2, `the handover frontend counts the two real connections only (counted ${n})`);
});

void t.test('without sock_diag the frontend falls back to /proc/net/unix, saying so once', async (t) => {
  const { listener } = await unixListener(t, 2);
  t.same(watchedSockets([listener]), [{ kind: 'unix', path: listener.path, fd: listener.fd }]);
  let calls = 0;
  const fallbacks: unknown[] = [];
  const frontend = new HandoverFrontend({
    listeners: [listener],
    pollMs: 20,
    countUnix: () => {
      calls++;
      throw new PodsockError('PODSOCK_ERR_NATIVE', 'count unix connections: EPROTONOSUPPORT', { details: { errno: 'EPROTONOSUPPORT' } });
    },
    onFallback: (err) => fallbacks.push(err),
    onError: (err) => t.fail(String(err)),
  });
  t.equal(await firstCount(t, frontend), 2);
  t.equal(await frontend.waitForConnection(new AbortController().signal), true, 'sampling again');
  t.equal(calls, 1, 'sock_diag is not tried again');
  t.equal(fallbacks.length, 1);
});

void t.test('other sock_diag failures are reported and count as busy', async (t) => {
  const { listener } = await unixListener(t, 0);
  const errors: unknown[] = [];
  const frontend = new HandoverFrontend({
    listeners: [listener],
    pollMs: 20,
    countUnix: () => {
      throw new PodsockError('PODSOCK_ERR_NATIVE', 'count unix connections: ESRCH', { details: { errno: 'ESRCH' } });
    },
    onFallback: () => t.fail('no fallback'),
    onError: (err) => errors.push(err),
  });
  t.equal(await firstCount(t, frontend), 1);
  t.equal(errors.length, 1);
});
