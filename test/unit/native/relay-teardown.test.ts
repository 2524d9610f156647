// A finished relay on the io_uring engine must not close its fds while operations naming those fd
// numbers are still queued: io_uring resolves an fd number only when it submits the operation
// (io_uring/io_uring.c io_assign_file), so a number closed and reused in between hands one connection's
// bytes to whatever got the number. The case built here, step by step and without any timing: in one
// batch of completions relay A receives bytes from its client (a send of them to its backend is queued,
// not yet submitted), then its backend's reset ends A, then the cancelled receives of relay Y, aborted
// just before, complete and Y's end is reported. What its callback does there is what the proxy does
// when a connection ends: start the next one, whose socket() takes the lowest free fd number. When A had
// closed its fds already, that was A's backend's number, and A's queued send delivered A's client's
// bytes to the next connection's backend.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { socketFd } from '../../../src/proxy/native-pipe.js';
import { dupFd } from '../../../src/native/fds.js';
import { RELAY_CONNECTED, relayConnect, relayEngine, type Relay } from '../../../src/native/relay.js';

const engine = relayEngine('auto');
const skip = engine.engine === 'io_uring' ? false : `the relay polls here (${engine.reason ?? 'unknown'}): nothing is queued in a ring`;

/** A connected pair of TCP sockets on loopback: [outer, inner]. */
async function pair(t: Test): Promise<[Socket, Socket]> {
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const outer = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  outer.pause();
  outer.on('error', () => undefined);
  const [inner] = (await once(server, 'connection')) as [Socket];
  inner.on('error', () => undefined);
  if (outer.connecting) await once(outer, 'connect');
  server.close();
  t.teardown(() => {
    outer.destroy();
    inner.destroy();
  });
  return [outer, inner];
}

/** The relay's side of a pair: a dup of `inner`'s fd, then Node lets go of its own. */
function takeOver(inner: Socket): number {
  const fd = dupFd(socketFd(inner));
  inner.destroy();
  return fd;
}

/** A server on loopback whose connections are destroyed at teardown: its port and its next connection. */
async function backend(t: Test): Promise<{ port: number; accepted: Promise<Socket> }> {
  const server: Server = createServer({ allowHalfOpen: true });
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const accepted = once(server, 'connection').then(([s]) => s as Socket);
  return { port: (server.address() as { port: number }).port, accepted };
}

void t.test('a queued send of a finished relay never reaches a reused fd number', { skip }, async (t) => {
  const [aClient, aClientInner] = await pair(t);
  const [, yClientInner] = await pair(t);
  const [vClientOuter, vClientInner] = await pair(t);
  const aServer = await backend(t);
  const yServer = await backend(t);

  // The next connection's backend: whatever reaches it is recorded.
  const received: Buffer[] = [];
  let victimEnded!: () => void;
  const ended = new Promise<void>((r) => (victimEnded = r));
  const victim = createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d: Buffer) => received.push(d));
    s.on('end', () => victimEnded());
    s.on('error', () => undefined);
  });
  victim.listen(0, '127.0.0.1');
  await once(victim, 'listening');
  t.teardown(() => victim.close());
  const victimPort = (victim.address() as { port: number }).port;

  // A's backend socket gets the lower fd number, the one the next socket() takes and A's send names:
  // a number is kept free below A's client fd until relayConnect() creates A's backend socket.
  let aConnected!: () => void;
  const connectedA = new Promise<void>((r) => (aConnected = r));
  const reserved = openSync('/dev/null', 'r');
  const fa = takeOver(aClientInner);
  closeSync(reserved);
  const doneA = new Promise<NodeJS.ErrnoException | null>((resolve) => {
    relayConnect({ fd: fa, initial: null, ended: false }, { host: '127.0.0.1', port: aServer.port }, (err, event) => {
      if (event === RELAY_CONNECTED) aConnected();
      else resolve(err);
    }, { timeoutMs: 5000, spliceAfter: -1 });
  });
  const vClient = takeOver(vClientInner);
  let next: Relay | null = null;
  let yConnected!: () => void;
  const connectedY = new Promise<void>((r) => (yConnected = r));
  let y!: Relay;
  const doneV = new Promise<NodeJS.ErrnoException | null>((resolveV) => {
    y = relayConnect({ fd: takeOver(yClientInner), initial: null, ended: false }, { host: '127.0.0.1', port: yServer.port }, (_err, event) => {
      if (event === RELAY_CONNECTED) return yConnected();
      next = relayConnect({ fd: vClient, initial: null, ended: false }, { host: '127.0.0.1', port: victimPort }, (err, event) => {
        if (event !== RELAY_CONNECTED) resolveV(err);
      }, { timeoutMs: 5000 });
    }, { timeoutMs: 5000 });
  });
  await Promise.all([connectedA, connectedY]);
  t.ok(reserved < fa && readlinkSync(`/proc/self/fd/${reserved}`).startsWith('socket:'), "A's backend socket has the lower number");
  const aBackend = await aServer.accepted;
  await yServer.accepted;
  // Every relay's first receives were submitted when it connected.

  // Fill every free fd number below A's, so that A's are the lowest free ones once A closes them.
  const fillers: number[] = [];
  for (;;) {
    const fd = openSync('/dev/null', 'r');
    if (fd > fa) {
      closeSync(fd);
      break;
    }
    fillers.push(fd);
  }
  t.teardown(() => {
    for (const fd of fillers.splice(0)) closeSync(fd);
  });

  // One synchronous block, so that all of it lands in the same batch of completions, in this order.
  aClient.write('L'.repeat(1000)); // A receives; a send to A's backend gets queued
  aBackend.resetAndDestroy(); // A's backend resets: A finishes
  y.abort(); // Y's receives are cancelled; their completions come after A's

  t.ok((await doneA) !== null, 'A ended with its backend reset');
  while (next === null) await new Promise((r) => setTimeout(r, 10));
  for (const fd of fillers.splice(0)) closeSync(fd);
  // Everything sent to the next connection's backend arrives before the EOF its client sends now.
  vClientOuter.end();
  await ended;
  t.equal(Buffer.concat(received).toString('latin1').indexOf('L'), -1, "the next connection's backend received nothing of A's client");
  (next as Relay).abort();
  t.equal(await doneV, null, 'the next connection ended by the abort');
});
