// The addon's accept and connect half of proxy mode: acceptConnections() (accept4 on Node's loop, stop
// from inside the callback), relayConnect() (connect in C, then relay: events, refused and timed-out
// connects that give the client back, unix paths, initial bytes and EOF, half-close, resets, cancel,
// abort, many at once, no fd left behind) and resetFd(). Real sockets throughout.
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { acceptConnections } from '../../../src/native/acceptor.js';
import { closeFd, inspectFd, listenSocket, resetFd } from '../../../src/native/fds.js';
import { RELAY_CONNECT_FAILED, RELAY_CONNECTED, RELAY_DONE, relayConnect, type ConnectTarget, type RelayEvent } from '../../../src/native/relay.js';
import { tmpDir } from '../../helpers/tmp-dir.js';
import { backend, replyOnEnd } from '../../helpers/backend.js';
import { errorCodeAtClose, openFdCount, readToEnd } from '../../helpers/socket-end.js';

// ---------------------------------------------------------------- helpers

/**
 * A connected pair: `peer` is a Node socket (the proxy's client), `fd` the accepted end as a raw fd
 * (what the acceptor hands over). The fd is closed at teardown unless `owned()` says a relay took it.
 */
async function clientPair(t: Test): Promise<{ peer: Socket; fd: number }> {
  const lfd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  const port = inspectFd(lfd).port as number;
  const accepted = new Promise<number>((resolve) => {
    const acceptor = acceptConnections(lfd, 16, (fd) => {
      acceptor.close();
      resolve(fd);
    }, () => undefined);
  });
  const peer = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  peer.on('error', () => undefined);
  t.teardown(() => peer.destroy());
  const fd = await accepted;
  await once(peer, 'connect');
  return { peer, fd };
}

interface Events {
  list: Array<{ event: RelayEvent; code: string | null }>;
  next(): Promise<{ event: RelayEvent; code: string | null }>;
}

function events(): Events & { on: (err: NodeJS.ErrnoException | null, event: RelayEvent) => void } {
  const list: Events['list'] = [];
  const waiting: Array<(e: Events['list'][number]) => void> = [];
  let taken = 0;
  return {
    list,
    on(err, event) {
      const e = { event, code: err === null ? null : (err.code ?? err.message) };
      list.push(e);
      const w = waiting.shift();
      if (w) {
        taken++;
        w(e);
      }
    },
    next() {
      const e = list[taken];
      if (e !== undefined) {
        taken++;
        return Promise.resolve(e);
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** What `s` receives until its end, as text. */
function collect(s: Socket): Promise<string> {
  return readToEnd(s).then(String);
}

/** The open fd count once it stopped changing (sockets of earlier tests close asynchronously). */
async function settledFds(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const now = openFdCount();
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 50));
  }
  return last;
}

function isOpen(fd: number): boolean {
  try {
    inspectFd(fd);
    return true;
  } catch {
    return false;
  }
}

/** A port that was free a moment ago: connecting to it is refused. */
async function refusedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/**
 * A TCP listener whose accept queue is full (backlog 0, one connection queued, nobody accepting): the
 * kernel drops further SYNs, so a connect to it stays in progress.
 */
async function blackHole(t: Test): Promise<ConnectTarget> {
  const lfd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 0 });
  t.teardown(() => closeFd(lfd));
  const port = inspectFd(lfd).port as number;
  const filler = connect({ port, host: '127.0.0.1' });
  filler.on('error', () => undefined);
  t.teardown(() => filler.destroy());
  await once(filler, 'connect');
  return { host: '127.0.0.1', port };
}

const TIMEOUT = { timeoutMs: 5000 };

// ---------------------------------------------------------------- relayConnect

void t.test('relayConnect: connected, bytes both ways with half-close, then done with null', async (t) => {
  const { target } = await backend(t, replyOnEnd);
  const { peer, fd } = await clientPair(t);
  const ev = events();
  const relay = relayConnect({ fd, initial: null, ended: false }, target, ev.on, TIMEOUT);
  t.same(await ev.next(), { event: RELAY_CONNECTED, code: null });
  const reply = collect(peer);
  peer.end('hello');
  t.equal(await reply, 'reply:hello', 'the reply came after the client had ended its side');
  peer.end();
  t.same(await ev.next(), { event: RELAY_DONE, code: null });
  t.equal(relay.active, false);
  t.equal(isOpen(fd), false, 'the relay closed the client fd');
});

void t.test('relayConnect: a unix socket path as the backend', async (t) => {
  const dir = tmpDir(t, 'podsock-connect-');
  const { target } = await backend(t, replyOnEnd, join(dir, 'app.sock'));
  const { peer, fd } = await clientPair(t);
  const ev = events();
  relayConnect({ fd, initial: null, ended: false }, target, ev.on, TIMEOUT);
  t.same(await ev.next(), { event: RELAY_CONNECTED, code: null });
  const reply = collect(peer);
  peer.end('over unix');
  t.equal(await reply, 'reply:over unix');
  t.same(await ev.next(), { event: RELAY_DONE, code: null });
});

void t.test('relayConnect: a refused connect gives the client fd back; a retry reaches a backend', async (t) => {
  const port = await refusedPort();
  const { target } = await backend(t, replyOnEnd);
  const { peer, fd } = await clientPair(t);
  const ev = events();
  relayConnect({ fd, initial: null, ended: false }, { host: '127.0.0.1', port }, ev.on, TIMEOUT);
  t.same(await ev.next(), { event: RELAY_CONNECT_FAILED, code: 'ECONNREFUSED' });
  t.equal(isOpen(fd), true, 'the client fd is open and the caller owns it again');
  t.equal(ev.list.length, 1, 'nothing else is reported for that attempt');

  const again = events();
  relayConnect({ fd, initial: null, ended: false }, target, again.on, TIMEOUT);
  t.same(await again.next(), { event: RELAY_CONNECTED, code: null });
  const reply = collect(peer);
  peer.end('second try');
  t.equal(await reply, 'reply:second try');
  t.same(await again.next(), { event: RELAY_DONE, code: null });
});

void t.test('relayConnect: a missing unix path fails with ENOENT, asynchronously', async (t) => {
  const { fd } = await clientPair(t);
  t.teardown(() => closeFd(fd));
  const ev = events();
  relayConnect({ fd, initial: null, ended: false }, { path: '/nonexistent/podsock-test.sock' }, ev.on, TIMEOUT);
  t.equal(ev.list.length, 0, 'not reported from inside the call');
  t.same(await ev.next(), { event: RELAY_CONNECT_FAILED, code: 'ENOENT' });
  t.equal(isOpen(fd), true);
});

void t.test('relayConnect: bytes read before and an EOF seen before reach the backend first', async (t) => {
  let received = '';
  const ended = new Promise<void>((resolve) => {
    void backend(t, (s) => {
      s.on('data', (d: Buffer) => (received += d.toString()));
      s.on('end', () => {
        s.end('bye');
        resolve();
      });
    }).then(({ target }) => start(target));
  });
  let reply!: Promise<string>;
  const start = async (target: ConnectTarget): Promise<void> => {
    const { peer, fd } = await clientPair(t);
    reply = collect(peer);
    // The client's FIN is queued in the kernel too: the relay passes both on.
    peer.end();
    relayConnect({ fd, initial: Buffer.from('early bytes'), ended: true }, target, () => undefined, TIMEOUT);
  };
  await ended;
  t.equal(received, 'early bytes');
  t.equal(await reply, 'bye');
});

void t.test('relayConnect: a backend reset resets the client; done reports ECONNRESET', async (t) => {
  const { target } = await backend(t, (s) => {
    s.once('data', () => s.resetAndDestroy());
  });
  const { peer, fd } = await clientPair(t);
  const ev = events();
  relayConnect({ fd, initial: null, ended: false }, target, ev.on, TIMEOUT);
  t.same(await ev.next(), { event: RELAY_CONNECTED, code: null });
  const code = errorCodeAtClose(peer);
  peer.write('x');
  t.equal(await code, 'ECONNRESET');
  t.same(await ev.next(), { event: RELAY_DONE, code: 'ECONNRESET' });
});

void t.test('relayConnect: the deadline fails a connect that hangs with ETIMEDOUT', async (t) => {
  const target = await blackHole(t);
  const { fd } = await clientPair(t);
  t.teardown(() => closeFd(fd));
  const ev = events();
  const started = Date.now();
  relayConnect({ fd, initial: null, ended: false }, target, ev.on, { timeoutMs: 200 });
  t.same(await ev.next(), { event: RELAY_CONNECT_FAILED, code: 'ETIMEDOUT' });
  t.ok(Date.now() - started >= 150, 'not before the deadline');
  t.equal(isOpen(fd), true);
});

void t.test('relayConnect: cancel() gives a connecting client back with no further event', async (t) => {
  const target = await blackHole(t);
  const { peer, fd } = await clientPair(t);
  t.teardown(() => closeFd(fd));
  const ev = events();
  const relay = relayConnect({ fd, initial: null, ended: false }, target, ev.on, { timeoutMs: 100 });
  t.equal(relay.cancel(), true);
  t.equal(relay.cancel(), false, 'a second cancel has nothing to cancel');
  await new Promise((r) => setTimeout(r, 300)); // past the deadline: no ETIMEDOUT may come
  t.same(ev.list, []);
  t.equal(isOpen(fd), true);
  t.equal(peer.destroyed, false, 'the client saw nothing');
});

void t.test('relayConnect: abort() while connecting resets the client and reports done with null', async (t) => {
  const target = await blackHole(t);
  const { peer, fd } = await clientPair(t);
  const ev = events();
  const relay = relayConnect({ fd, initial: null, ended: false }, target, ev.on, TIMEOUT);
  const code = errorCodeAtClose(peer);
  relay.abort();
  t.equal(relay.cancel(), false, 'nothing left to cancel');
  t.equal(await code, 'ECONNRESET');
  t.same(await ev.next(), { event: RELAY_DONE, code: null });
  t.equal(isOpen(fd), false);
});

void t.test('relayConnect: invalid arguments throw and leave the fd with the caller', async (t) => {
  const { fd } = await clientPair(t);
  t.teardown(() => closeFd(fd));
  t.throws(() => relayConnect({ fd, initial: null, ended: false }, { host: 'localhost', port: 80 }, () => undefined, TIMEOUT), {
    code: 'PODSOCK_ERR_NATIVE',
    message: /'localhost'.*IPv4 or IPv6/,
  });
  t.throws(() => relayConnect({ fd, initial: null, ended: false }, { host: '127.0.0.1', port: 70000 }, () => undefined, TIMEOUT), {
    code: 'PODSOCK_ERR_NATIVE',
  });
  t.throws(() => relayConnect({ fd, initial: null, ended: false }, { path: '' }, () => undefined, TIMEOUT), { code: 'PODSOCK_ERR_NATIVE' });
  t.equal(isOpen(fd), true);
});

void t.test('relayConnect: 200 at once through one acceptor, then every fd is closed', async (t) => {
  const { target } = await backend(t, replyOnEnd);
  const lfd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 512 });
  const port = inspectFd(lfd).port as number;
  const results: Array<Promise<{ event: RelayEvent; code: string | null }>> = [];
  // Warm up so lazily created fds (the loop's, the backend's) are in the baseline.
  const warm = connect({ port: (target as { port: number }).port, host: '127.0.0.1' });
  await once(warm, 'connect');
  warm.destroy();
  const baseline = await settledFds();
  const acceptor = acceptConnections(lfd, 512, (fd) => {
    results.push(
      new Promise((resolve) => {
        relayConnect({ fd, initial: null, ended: false }, target, (err, event) => {
          if (event !== RELAY_CONNECTED) resolve({ event, code: err === null ? null : (err.code ?? '') });
        }, TIMEOUT);
      }),
    );
  }, (err) => t.fail(err.message));
  t.teardown(() => acceptor.close());
  const n = 200;
  const replies = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      c.on('error', () => undefined);
      const r = collect(c);
      c.end(`n${i}`);
      const got = await r;
      c.end();
      await once(c, 'close');
      return got;
    }),
  );
  t.same(replies, Array.from({ length: n }, (_, i) => `reply:n${i}`));
  const done = await Promise.all(results);
  t.equal(done.length, n);
  t.same(done.filter((d) => d.event !== RELAY_DONE || d.code !== null), [], 'every relay ended cleanly');
  acceptor.close();
  // The baseline counted the listening fd, which the acceptor owned and closed.
  for (let i = 0; i < 100 && openFdCount() !== baseline - 1; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(openFdCount(), baseline - 1, 'no fd left behind, and the acceptor closed its own');
});

// ---------------------------------------------------------------- acceptConnections, resetFd

void t.test('acceptConnections: close() from inside onAccept stops exactly there; the socket keeps listening', async (t) => {
  const lfd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  t.teardown(() => closeFd(lfd));
  const port = inspectFd(lfd).port as number;
  const a = connect({ port, host: '127.0.0.1' });
  const b = connect({ port, host: '127.0.0.1' });
  for (const s of [a, b]) {
    s.on('error', () => undefined);
    t.teardown(() => s.destroy());
  }
  await Promise.all([once(a, 'connect'), once(b, 'connect')]); // both queued in the kernel now
  const { dupFd } = await import('../../../src/native/fds.js');
  const accepted: number[] = [];
  const acceptor = acceptConnections(dupFd(lfd), 16, (fd) => {
    accepted.push(fd);
    acceptor.close();
  }, () => undefined);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(accepted.length, 1, 'one accepted, the other left queued');
  for (const fd of accepted) closeFd(fd);
  t.equal(inspectFd(lfd).listening, true, 'the shared socket still listens (closing the dup is all)');
  const second = await new Promise<number>((resolve) => {
    const again = acceptConnections(dupFd(lfd), 16, (fd) => {
      again.close();
      resolve(fd);
    }, () => undefined);
  });
  t.equal(inspectFd(second).type, 'stream', 'the queued connection is accepted by the next acceptor');
  closeFd(second);
});

void t.test('acceptConnections: a socket that is not a listening stream socket is refused', async (t) => {
  const lfd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  t.teardown(() => closeFd(lfd));
  t.throws(() => acceptConnections(-1, 16, () => undefined, () => undefined), { code: 'PODSOCK_ERR_NATIVE' });
  t.throws(() => acceptConnections(999_999, 16, () => undefined, () => undefined), { code: 'PODSOCK_ERR_NATIVE' });
});

void t.test('resetFd: the peer sees a reset, not an EOF', async (t) => {
  const { peer, fd } = await clientPair(t);
  const code = errorCodeAtClose(peer);
  resetFd(fd);
  t.equal(await code, 'ECONNRESET');
  t.equal(isOpen(fd), false);
  t.throws(() => resetFd(fd), { code: 'PODSOCK_ERR_NATIVE' });
});
