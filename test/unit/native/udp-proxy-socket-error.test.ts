// A pending socket error on the UDP proxy's listening socket (native/udp-proxy-io.c) is not the end of
// it. The real way to give a bound UDP socket one is SOCK_DESTROY (sock_diag(7); `ss -K`, which an
// administrator or a socket load balancer runs): the kernel's udp_abort() (net/ipv4/udp.c) sets the
// socket's error to ECONNABORTED, which the next read or SO_ERROR returns once, and a socket bound to an
// explicit port (as systemd binds ListenDatagram=) stays bound and receives on. The engine sees the
// error either as POLLERR (when the poll comes after it) or from recvmmsg(2) itself (when the error
// arrives between the poll and the read); both times it must keep serving, not stop with an error
// event. Needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY: skipped without them.
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import t, { type Test } from 'tap';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { udpProxyOpen, type UdpProxyEvent } from '../../../src/native/udp-proxy.js';

const HOST = '127.0.0.1';

/** Destroy every UDP socket whose local port is `port` (ss(8) -K lists those it destroyed); how many. */
function destroy(port: number): number {
  const out = execFileSync('ss', ['-K', '-H', '-u', '-a', `sport = :${port}`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

/** Why SOCK_DESTROY cannot be used here, or false: a throwaway socket is destroyed or not. */
function cannotDestroy(): string | false {
  const fd = listenSocket({ kind: 'udp', host: HOST, port: 0 });
  try {
    return destroy(inspectFd(fd).port ?? 0) === 1 ? false : 'ss -K destroys no UDP socket here (CAP_NET_ADMIN, CONFIG_INET_DIAG_DESTROY)';
  } catch (err) {
    return `ss -K fails here: ${(err as Error).message}`;
  } finally {
    closeFd(fd);
  }
}

/** A bound Node dgram socket on HOST, closed at teardown. */
async function bound(t: Test): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.bind(0, HOST, resolve));
  t.teardown(() => {
    try {
      s.close();
    } catch {
      // already closed
    }
  });
  return s;
}

/** A port free right now (bound, then given back): systemd binds ListenDatagram= to an explicit port. */
async function freePort(t: Test): Promise<number> {
  const s = await bound(t);
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(resolve));
  return port;
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

void t.test('a pending socket error on the listening socket is read and ignored: the engine serves on', { skip: cannotDestroy(), timeout: 30_000 }, async (t) => {
  const port = await freePort(t);
  const fd = listenSocket({ kind: 'udp', host: HOST, port });
  const events: UdpProxyEvent[] = [];
  const proxy = udpProxyOpen(fd, {}, (e) => events.push(e));
  t.teardown(() => proxy.close());
  const backend = await bound(t);
  backend.on('message', (msg, from) => backend.send(Buffer.concat([msg, Buffer.from('|answer')]), from.port, from.address));
  proxy.setTarget({ host: HOST, port: backend.address().port });
  const client = await bound(t);
  const got: string[] = [];
  client.on('message', (m) => got.push(m.toString()));
  const ask = async (text: string): Promise<void> => {
    client.send(text, port, HOST);
    await until(() => got.includes(`${text}|answer`) || events.some((e) => e.type === 'error'));
  };
  await ask('before');

  // The error comes before the poll: the engine hears of it as POLLERR.
  t.equal(destroy(port), 1, 'ss -K destroyed the listening socket');
  await ask('after-pollerr');
  t.same(events.filter((e) => e.type === 'error'), [], 'no error event');
  t.ok(got.includes('after-pollerr|answer'), 'answered after an error seen as POLLERR');

  // The error comes between the poll and the read: in one loop iteration, a socket made ready first
  // (the trigger) runs ss -K from its handler, then the engine's poll callback, whose readiness epoll
  // already reported without the error, reads. The kernel delivers the two datagrams in the order they
  // were sent; should it not, the round is tried again.
  const trigger = await bound(t);
  let inBefore = 0;
  let between = false;
  trigger.on('message', () => {
    between = proxy.info().datagramsIn === inBefore;
    destroy(port);
  });
  for (let round = 0; round < 5 && !between; round++) {
    // A few loop turns first, so that epoll no longer lists the engine's socket from its last read.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    inBefore = proxy.info().datagramsIn;
    client.send('go', trigger.address().port, HOST);
    await ask(`after-read-error-${round}`);
    t.same(
      events.filter((e) => e.type === 'error').map((e) => (e.type === 'error' ? e.error.message : '')),
      [],
      `round ${round}: no error event`,
    );
    t.ok(got.includes(`after-read-error-${round}|answer`), `round ${round}: answered after the error${between ? ', which recvmmsg returned' : ''}`);
  }
  t.ok(between, 'the error came between the poll and the read');
  t.match(proxy.info(), { active: true, failed: 0 });
  t.equal(inspectFd(fd).port, port, 'still bound to its port');
});

void t.test("a flow whose upstream socket was destroyed is opened again: its client is answered on", { skip: cannotDestroy(), timeout: 30_000 }, async (t) => {
  const fd = listenSocket({ kind: 'udp', host: HOST, port: 0 });
  const port = inspectFd(fd).port ?? 0;
  const events: UdpProxyEvent[] = [];
  const proxy = udpProxyOpen(fd, {}, (e) => events.push(e));
  t.teardown(() => proxy.close());
  const backend = await bound(t);
  const sources: number[] = [];
  backend.on('message', (msg, from) => {
    sources.push(from.port);
    backend.send(Buffer.concat([msg, Buffer.from('|answer')]), from.port, from.address);
  });
  proxy.setTarget({ host: HOST, port: backend.address().port });
  const client = await bound(t);
  const got: string[] = [];
  client.on('message', (m) => got.push(m.toString()));
  client.send('one', port, HOST);
  await until(() => got.length === 1);
  // ss -K disconnects the flow's connected socket (udp_abort() in net/ipv4/udp.c) and, as connect()
  // bound it to a port of the kernel's choice, takes that port away too.
  t.equal(destroy(sources[0] ?? 0), 1, "ss -K destroyed the flow's upstream socket");
  client.send('two', port, HOST);
  await until(() => got.length === 2 || proxy.info().failed > 0);
  t.same(got, ['one|answer', 'two|answer'], 'the client is answered on');
  t.equal(sources.length, 2);
  t.not(sources[1], sources[0], 'from a new upstream socket');
  t.match(proxy.info(), { active: true, flows: 1, failed: 0 });
});
