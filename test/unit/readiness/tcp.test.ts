import net from 'node:net';
import t, { type Test } from 'tap';
import { probeTcpOnce, waitTcpReady } from '../../../src/readiness/tcp.js';
import { DEFAULT_GRACE_MS, tcpGraceFor } from '../../../src/readiness/tcp-grace.js';
import { runUntilItExits } from '../../helpers/exits-by-itself.js';
import { pendingAfter } from '../../helpers/pending-after.js';
import { latePort } from '../late-port.js';

type Mode = 'hold' | 'destroy' | 'reset' | 'banner';

/** A TCP server on 127.0.0.1 whose behaviour for new connections can be switched. */
async function server(t: Test, initial: Mode, port = 0): Promise<{ port: number; connections: () => number; set: (m: Mode) => void }> {
  let mode = initial;
  let count = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    count++;
    socket.on('error', () => {});
    if (mode === 'destroy') socket.destroy();
    else if (mode === 'reset') socket.resetAndDestroy();
    else if (mode === 'banner') socket.end('220 hello\r\n');
    else {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return { port: (srv.address() as net.AddressInfo).port, connections: () => count, set: (m) => (mode = m) };
}

void t.test('resolves once a server starts listening late', async (t) => {
  const port = await latePort();
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const start = Date.now();
  const ready = waitTcpReady({ host: '127.0.0.1', port, signal: ac.signal });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const srv = await server(t, 'hold', port);
  await ready;
  const elapsed = Date.now() - start;
  t.ok(elapsed >= 500, `resolved after ${elapsed} ms, not before the server listened`);
  t.ok(elapsed < 10_000);
  t.equal(srv.connections(), 1, 'one probe connection reached the server');
});

void t.test('a server that accepts and closes at once is not ready (port forwarder without app)', async (t) => {
  for (const mode of ['destroy', 'reset'] as const) {
    const srv = await server(t, mode);
    const ac = new AbortController();
    t.teardown(() => ac.abort());
    const ready = waitTcpReady({ host: '127.0.0.1', port: srv.port, signal: ac.signal });
    t.ok(await pendingAfter(ready, 1500), `${mode}: still waiting after 1.5 s`);
    t.ok(srv.connections() >= 3, `${mode}: kept retrying (${srv.connections()} connections)`);
    srv.set('hold');
    await ready;
    t.pass(`${mode}: ready once the server keeps the connection`);
  }
});

void t.test('a peer that sends data first is ready without waiting for the grace window', async (t) => {
  const srv = await server(t, 'banner');
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const start = Date.now();
  t.equal(await probeTcpOnce({ host: '127.0.0.1', port: srv.port, signal: ac.signal, connectTimeoutMs: 5000, graceMs: 30_000 }), true);
  t.ok(Date.now() - start < 10_000, 'did not wait for the 30 s grace window');
});

void t.test('probeTcpOnce: refused is false, held is true, the probe connection is closed', async (t) => {
  const ac = new AbortController();
  const opts = { host: '127.0.0.1', signal: ac.signal, connectTimeoutMs: 5000, graceMs: 100 };
  t.equal(await probeTcpOnce({ ...opts, port: await latePort() }), false);
  let closed = false;
  const srv = net.createServer((socket) => socket.on('close', () => (closed = true)));
  t.teardown(() => srv.close());
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.equal(await probeTcpOnce({ ...opts, port: (srv.address() as net.AddressInfo).port }), true);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.ok(closed, 'the server saw the probe connection close');
});

void t.test('abort rejects with the reason promptly', async (t) => {
  const reason = new Error('container exited');
  const port = await latePort();
  const ac = new AbortController();
  const ready = waitTcpReady({ host: '127.0.0.1', port, signal: ac.signal });
  setTimeout(() => ac.abort(reason), 100);
  const start = Date.now();
  await t.rejects(ready, reason);
  t.ok(Date.now() - start < 2000, 'promptly');
  await t.rejects(waitTcpReady({ host: '127.0.0.1', port, signal: AbortSignal.abort(reason) }), reason, 'already aborted');
});

// A separate process must exit by itself after the abort: any socket or timer left behind would keep it
// alive, and the 60 s timeouts make sure a leaked one would be noticed (the watchdog reports what is left).
void t.test('abort leaves no socket or timer behind', async (t) => {
  const holding = await server(t, 'hold');
  const refusing = await latePort();
  const code = `
    const { waitTcpReady } = await import(${JSON.stringify(new URL('../../../src/readiness/tcp.ts', import.meta.url).href)});
    const run = async (port, abortAfterMs) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('stop')), abortAfterMs);
      return waitTcpReady({ host: '127.0.0.1', port, signal: ac.signal, connectTimeoutMs: 60000, graceMs: 60000,
        backoff: { initialMs: 60000, maxMs: 60000 } }).then(() => 'resolved', (e) => e.message);
    };
    // in the grace window on a held connection; in the backoff sleep after a refusal
    console.log(await run(${holding.port}, 300), await run(${refusing}, 300));
  `;
  const { out, exitCode } = await runUntilItExits(t, code);
  t.equal(out, 'stop stop\n');
  t.equal(exitCode, 0);
  t.equal(holding.connections(), 1);
});

void t.test('the grace window is paid only where a user-space forwarder may accept for the app', async (t) => {
  t.equal(tcpGraceFor({ rootless: false, podmanOptions: [] }), 0, 'rootful bridge: DNAT, a connect is the app');
  t.equal(tcpGraceFor({ rootless: false, podmanOptions: ['--network', 'bridge', '--env', 'A=1'] }), 0);
  t.equal(tcpGraceFor({ rootless: true, podmanOptions: [] }), DEFAULT_GRACE_MS, 'rootless: rootlessport accepts first');
  t.equal(tcpGraceFor({ rootless: false, podmanOptions: ['--network', 'slirp4netns:port_handler=slirp4netns'] }), DEFAULT_GRACE_MS);
  t.equal(tcpGraceFor({ rootless: false, podmanOptions: ['--network=pasta'] }), DEFAULT_GRACE_MS);
});
