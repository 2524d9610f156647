// A finished relay on the io_uring engine must not close its fds while operations naming those fd
// numbers are still queued: io_uring resolves an fd number only when it submits the operation
// (io_uring/io_uring.c io_assign_file), so a number closed and reused in between hands one connection's
// bytes to whatever got the number. The case built here, step by step and without any timing: in one
// batch of completions relay A receives bytes from its client (a send of them to its backend is queued,
// not yet submitted), then its backend's reset ends A, then the cancelled receives of relay Y, aborted
// just before, complete and Y's onDone runs. What onDone does there is what the proxy does when a
// connection ends: start the next one, whose socket() takes the lowest free fd number. When A had
// closed its fds already, that was A's backend's number, and A's queued send delivered A's client's
// bytes to the next connection's backend.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { socketFd } from '../../../src/proxy/native-pipe.js';
import { dupFd, relay, RELAY_CONNECTED, relayConnect, relayEngine, type Relay } from '../../../src/sd/native.js';

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

void t.test('a queued send of a finished relay never reaches a reused fd number', { skip }, async (t) => {
  const [a1, a1Inner] = await pair(t);
  const [a2, a2Inner] = await pair(t);
  const [, yClientInner] = await pair(t);
  const [, yBackendInner] = await pair(t);
  const [vClientOuter, vClientInner] = await pair(t);

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

  // A's backend is the side with the lower fd: the next socket() takes its number, the one A's send names.
  const f1 = takeOver(a1Inner);
  const f2 = takeOver(a2Inner);
  const [aClient, fa, aBackend, fb] = f1 > f2 ? [a1, f1, a2, f2] : [a2, f2, a1, f1];
  const doneA = new Promise<NodeJS.ErrnoException | null>((resolve) => {
    relay({ fd: fa, initial: null, ended: false }, { fd: fb, initial: null, ended: false }, resolve, { spliceAfter: -1 });
  });
  const vClient = takeOver(vClientInner);
  let next: Relay | null = null;
  let abortY = (): void => undefined;
  const doneV = new Promise<NodeJS.ErrnoException | null>((resolveV) => {
    const y = relay({ fd: takeOver(yClientInner), initial: null, ended: false }, { fd: takeOver(yBackendInner), initial: null, ended: false }, () => {
      next = relayConnect({ fd: vClient, initial: null, ended: false }, { host: '127.0.0.1', port: victimPort }, (err, event) => {
        if (event !== RELAY_CONNECTED) resolveV(err);
      }, { timeoutMs: 5000 });
    });
    abortY = () => y.abort();
  });
  // Every relay's first receives were submitted by relay() itself.

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
  abortY(); // Y's receives are cancelled; their completions come after A's

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
