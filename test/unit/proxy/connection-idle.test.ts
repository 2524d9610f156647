// ConnectionIdleTimeout= in proxy mode (ProxyOptions.connectionIdleTimeoutMs): a piped connection that
// moves no byte in either direction for that long is reset on both sides and reported, one that keeps
// moving bytes is left alone, time spent held before the container was ready does not count, and once
// the idle one is gone and the active one ends, the proxy reports 'idle' (what the supervisor's idle
// exit waits for). On every data path: the native relay on io_uring and on its poll engine, and the JS pipe.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Proxy, type PipeKind } from '../../../src/proxy/proxy.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { relayEngine } from '../../../src/native/relay.js';
import { backend } from '../../helpers/backend.js';

const TIMEOUT_MS = 2000;
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An echo backend on 127.0.0.1:0. */
async function echo(t: Test): Promise<number> {
  const { port } = await backend(t, (s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
  });
  return port;
}

/** A client whose every reply is awaited: send(x) resolves with the echo of x. */
function client(port: number): { socket: Socket; send: (x: string) => Promise<string>; closed: Promise<string | null> } {
  const socket = connect(port, '127.0.0.1');
  let pending = '';
  let waiter: ((s: string) => void) | null = null;
  let want = 0;
  socket.on('data', (d: Buffer) => {
    pending += d.toString();
    if (waiter !== null && pending.length >= want) {
      const w = waiter;
      waiter = null;
      const got = pending;
      pending = '';
      w(got);
    }
  });
  let code: string | null = null;
  socket.on('error', (e: NodeJS.ErrnoException) => (code = e.code ?? e.message));
  const closed = new Promise<string | null>((resolve) => socket.once('close', () => resolve(code)));
  const send = (x: string): Promise<string> =>
    new Promise((resolve) => {
      want = x.length;
      waiter = resolve;
      socket.write(x);
    });
  return { socket, send, closed };
}

const variants: Array<[string, PipeKind, 'auto' | 'poll']> = [
  ['native relay', 'native', 'auto'],
  ['native relay, poll engine', 'native', 'poll'],
  ['JS pipe', 'js', 'auto'],
];

for (const [name, pipe, engine] of variants) {
  void t.test(`${name}: an idle connection is reset after ConnectionIdleTimeout, an active one is not`, async (t) => {
    relayEngine(engine);
    t.teardown(() => void relayEngine('auto'));
    const backendPort = await echo(t);
    const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 64 });
    t.teardown(() => closeFd(fd));
    const port = inspectFd(fd).port as number;
    const proxy = new Proxy({ listeners: [{ name: 'web', fd }], maxConnections: 64, maxPending: 64, pipe, connectionIdleTimeoutMs: TIMEOUT_MS });
    t.teardown(() => proxy.destroy());
    const timeouts: Array<[number, number]> = [];
    proxy.on('connectionTimeout', (info, idleMs) => timeouts.push([info.id, idleMs]));
    await proxy.start();

    // Held for longer than the timeout while the "container" starts: that does not count.
    const idle = client(port);
    const active = client(port);
    await once(active.socket, 'connect');
    await delay(TIMEOUT_MS + 500);
    proxy.setTargets(() => ({ host: '127.0.0.1', port: backendPort }));
    t.equal(await idle.send('hello'), 'hello', 'the idle client was served after being held');
    t.equal(await active.send('a'), 'a', 'the active client was served after being held');
    await delay(TIMEOUT_MS / 2);
    t.equal(idle.socket.destroyed, false, 'the time held did not count: the idle client is still connected half a timeout later');

    // The active client keeps moving bytes; the idle one says nothing until it is reset.
    let idleGone = false;
    const idleClosed = idle.closed.then((code) => {
      idleGone = true;
      return code;
    });
    const guard = Date.now() + 10 * TIMEOUT_MS;
    let rounds = 0;
    let echoed = true;
    while (!idleGone && echoed && Date.now() < guard) {
      echoed = (await active.send('x')) === 'x';
      rounds++;
      await delay(100);
    }
    t.ok(echoed, 'the active client got every echo meanwhile');
    t.ok(idleGone, `the idle connection was closed (after ${rounds} rounds of the active one)`);
    const code = await Promise.race([idleClosed, delay(1).then(() => 'open')]);
    t.ok(code === 'ECONNRESET' || code === null, `the idle client saw a reset or a close (${code})`);
    t.equal(await active.send('still'), 'still', 'the active connection is untouched');
    t.equal(timeouts.length, 1, 'one connectionTimeout event');
    t.ok((timeouts[0]?.[1] ?? 0) >= TIMEOUT_MS, `it reports the idle time (${timeouts[0]?.[1]} ms)`);
    t.equal(proxy.stats.timedOut, 1, 'counted');
    t.equal(proxy.activeCount, 1, 'the closed connection no longer counts');

    // The active one ends: nothing is open, the proxy says idle (the supervisor's idle exit arms on it).
    const idleEvent = once(proxy, 'idle');
    active.socket.end();
    await active.closed;
    await idleEvent;
    t.equal(proxy.activeCount, 0, 'no connection left');
  });
}
