/**
 * ConnectionIdleTimeout= under the real systemd user manager with real podman: a connection that says
 * nothing is reset once the timeout passed (and logged), one that keeps talking is not and keeps the
 * service up, and once it closes too the service exits on IdleTimeout as usual.
 */
import net from 'node:net';
import t from 'tap';
import { hostEnv, readLog, uniqueName, waitFor } from './harness.js';
import { holdConnection, installPodsockService, serviceState, waitState } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

if (h !== null) {
  await t.test('an idle connection is reset after ConnectionIdleTimeout, an active one is not; then the service exits idle', async (t) => {
    const name = uniqueName('ci');
    const containerFile = proxyContainerFile(h, name, { podsock: ['IdleTimeout=2s', 'ConnectionIdleTimeout=3s'] });
    const svc = await installPodsockService(t, h, name, { containerFile });

    const idle = await holdConnection(svc.port);
    t.teardown(() => idle.destroy());
    let idleError: string | null = null;
    idle.on('error', (e: NodeJS.ErrnoException) => (idleError = e.code ?? e.message));
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));

    // The fixture echoes whatever is not an HTTP request line.
    const active = net.connect({ host: '127.0.0.1', port: svc.port });
    t.teardown(() => active.destroy());
    let echoed = '';
    active.on('data', (d: Buffer) => (echoed += d.toString()));
    active.on('error', () => undefined);
    let sent = 0;
    const pinger = setInterval(() => {
      active.write('ping\n');
      sent++;
    }, 500);
    t.teardown(() => clearInterval(pinger));

    let closed = false;
    void idleClosed.then(() => (closed = true));
    await waitFor('the idle connection to be closed', async () => closed, 90_000);
    t.pass(`the idle connection was closed (${idleError ?? 'EOF'})`);
    const before = echoed.length;
    await waitFor('the active connection to echo again', async () => echoed.length > before, 10_000);
    t.ok(echoed.startsWith('ping\nping\n'), `the active connection kept its echoes (${sent} pings sent)`);
    t.equal((await serviceState(h, name)).ActiveState, 'active', 'the active connection keeps the service up');
    await waitFor('the timeout in the log', async () => /moved no byte for \d+ ms \(ConnectionIdleTimeout=\)/.test(readLog(svc.log)), 15_000).catch(() => undefined);
    t.match(readLog(svc.log), /Connection \d+ on socket '[^']*' moved no byte for \d+ ms \(ConnectionIdleTimeout=\), closing it/, 'logged');

    clearInterval(pinger);
    active.destroy();
    await waitState(h, name, ['inactive'], 30_000);
    t.pass('the service exited on IdleTimeout once the active connection closed');
  });
}
