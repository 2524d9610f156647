// The UDP proxy engine (native/udp-proxy.c through src/native/udp-proxy.ts) with real sockets on
// loopback, IPv4 and IPv6: queueing before the target and delivery in order, 200 concurrent clients
// each answered on their own flow, expiry, eviction of the least recently active flow, queue overflow
// and its drop events (at most one a second), ICMP port unreachable retried while the backend starts,
// PROXY v2 headers, and no fd left after close().
// The backend is a Node dgram echo server that answers `token|the source it saw`.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import t, { type Test } from 'tap';
import { closeFd, dupFd } from '../../../src/native/fds.js';
import { udpProxyOpen, type UdpProxy, type UdpProxyEvent, type UdpProxyInfo, type UdpProxyOptions } from '../../../src/native/udp-proxy.js';

type Family = 4 | 6;
const LOOPBACK = { 4: '127.0.0.1', 6: '::1' } as const;
const udp = (family: Family): 'udp4' | 'udp6' => (family === 4 ? 'udp4' : 'udp6');

/** Wait until `check` holds, re-checking every 5 ms (the test's own timeout bounds it). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

/** A bound Node dgram socket, closed at teardown. */
async function bound(t: Test, family: Family, port = 0): Promise<Socket> {
  const s = createSocket(udp(family));
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.bind(port, LOOPBACK[family], resolve));
  t.teardown(() => {
    try {
      s.close();
    } catch {
      // already closed
    }
  });
  return s;
}

/** A raw fd of a bound UDP socket (what systemd passes): Node's socket is closed, the dup stays bound. */
async function listeningFd(family: Family, host: string = LOOPBACK[family]): Promise<{ fd: number; port: number }> {
  const s = createSocket(udp(family));
  await new Promise<void>((resolve) => s.bind(0, host, resolve));
  const port = s.address().port;
  // Node offers no public way to the fd of a dgram socket; its handle has one.
  const fd = dupFd((s as unknown as { _handle: { fd: number } })._handle.fd);
  s.close();
  return { fd, port };
}

/** An echo backend: answers each datagram with `payload|address:port` of the source it saw. */
async function echo(t: Test, family: Family, port = 0): Promise<{ socket: Socket; port: number; seen: Array<{ msg: Buffer; from: RemoteInfo }> }> {
  const socket = await bound(t, family, port);
  const seen: Array<{ msg: Buffer; from: RemoteInfo }> = [];
  socket.on('message', (msg, from) => {
    seen.push({ msg, from });
    socket.send(Buffer.concat([msg, Buffer.from(`|${from.address}:${from.port}`)]), from.port, from.address);
  });
  return { socket, port: socket.address().port, seen };
}

/** An engine on a new listening socket, closed at teardown, with its events collected. */
async function engine(t: Test, family: Family, options: UdpProxyOptions = {}): Promise<{ proxy: UdpProxy; port: number; events: UdpProxyEvent[]; info: () => UdpProxyInfo }> {
  const { fd, port } = await listeningFd(family);
  const events: UdpProxyEvent[] = [];
  const proxy = udpProxyOpen(fd, options, (e) => events.push(e));
  t.teardown(() => proxy.close());
  return { proxy, port, events, info: () => proxy.info() };
}

/** A client socket that collects the text of what it receives. */
async function client(t: Test, family: Family): Promise<{ socket: Socket; got: string[]; send: (text: string, port: number) => void }> {
  const socket = await bound(t, family);
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  return { socket, got, send: (text, port) => socket.send(text, port, LOOPBACK[family]) };
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;
/** What waits for datagrams fails by this deadline instead of hanging until the run's own timeout. */
const WAIT = { timeout: 30_000 };

for (const family of [4, 6] as const) {
  void t.test(`IPv${family}: datagrams before the target are queued and delivered in order`, { ...WAIT }, async (t) => {
    const e = await engine(t, family);
    const backend = await echo(t, family);
    const c = await client(t, family);
    for (let i = 0; i < 5; i++) c.send(`q${i}`, e.port);
    await until(() => e.info().queued === 5);
    t.ok(e.events.some((ev) => ev.type === 'count' && ev.flows === 0 && ev.queued > 0), 'a count event says the queue is no longer empty');
    e.proxy.setTarget({ host: LOOPBACK[family], port: backend.port });
    await until(() => c.got.length === 5);
    t.same(c.got.map((s) => s.split('|')[0]), ['q0', 'q1', 'q2', 'q3', 'q4'], 'answered in arrival order');
    t.equal(new Set(backend.seen.map((s) => s.from.port)).size, 1, 'all five on one flow');
    const info = e.info();
    t.match(info, { flows: 1, queued: 0, queuedBytes: 0, dropped: 0, datagramsIn: 5, datagramsOut: 5, bytesIn: 10 });
    await until(() => e.events.some((ev) => ev.type === 'count' && ev.queued === 0 && ev.flows === 1));
    // Replies leave from the address the client sent to.
    t.ok(c.got.every((s) => s.endsWith(`:${backend.seen[0]?.from.port}`)));
  });

  void t.test(`IPv${family}: 200 concurrent clients each get their own answers`, { ...WAIT }, async (t) => {
    const e = await engine(t, family);
    const backend = await echo(t, family);
    e.proxy.setTarget({ host: LOOPBACK[family], port: backend.port });
    const clients = await Promise.all(Array.from({ length: 200 }, () => client(t, family)));
    const replyFrom = new Set<string>();
    for (const c of clients) c.socket.on('message', (_m, from) => replyFrom.add(`${from.address}:${from.port}`));
    // All at once, two datagrams each; like a resolver, a client that has no answer asks again (the
    // kernel drops what does not fit a socket's receive buffer, as UDP may).
    const ask = (): void =>
      clients.forEach((c, i) => {
        if (c.got.length === 0) {
          c.send(`client-${i}-a`, e.port);
          c.send(`client-${i}-b`, e.port);
        }
      });
    ask();
    const again = setInterval(ask, 250);
    t.teardown(() => clearInterval(again));
    await until(() => clients.every((c) => c.got.length > 0));
    clearInterval(again);
    const strays = clients.flatMap((c, i) => c.got.filter((s) => !/^client-(\d+)-[ab]\|/.test(s) || s.split('-')[1] !== String(i)).map((s) => `${i}: ${s}`));
    t.same(strays, [], 'every client got only its own answers');
    const flowOf = clients.map((c) => new Set(c.got.map((s) => s.split('|')[1])));
    t.ok(flowOf.every((s) => s.size === 1), 'each client has one flow');
    t.equal(new Set(flowOf.map((s) => [...s][0])).size, 200, 'and no two clients share one');
    t.same([...replyFrom], [`${LOOPBACK[family]}:${e.port}`], 'every reply came from the proxied address');
    t.match(e.info(), { flows: 200, failed: 0 });
    await until(() => e.events.some((ev) => ev.type === 'count' && ev.flows === 200));
  });

  void t.test(`IPv${family}: PROXY v2 header on every datagram, replies unchanged`, { ...WAIT }, async (t) => {
    const e = await engine(t, family, { proxyV2: true });
    const backend = await echo(t, family);
    e.proxy.setTarget({ host: LOOPBACK[family], port: backend.port });
    const c = await client(t, family);
    const cport = c.socket.address().port;
    const raw: Buffer[] = [];
    c.socket.on('message', (m) => raw.push(m));
    c.send('one', e.port);
    c.send('two', e.port);
    await until(() => c.got.length === 2);
    const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
    const addr = family === 4 ? Buffer.from([127, 0, 0, 1]) : Buffer.concat([Buffer.alloc(15), Buffer.from([1])]);
    const port = (p: number): Buffer => Buffer.from([p >> 8, p & 0xff]);
    const header = Buffer.concat([sig, Buffer.from([0x21, family === 4 ? 0x12 : 0x22, 0, family === 4 ? 12 : 36]), addr, addr, port(cport), port(e.port)]);
    t.equal(backend.seen.length, 2);
    for (const [i, payload] of ['one', 'two'].entries()) {
      t.same(backend.seen[i]?.msg.toString('hex'), Buffer.concat([header, Buffer.from(payload)]).toString('hex'), `datagram ${i + 1}: the header, then the payload`);
    }
    const from = backend.seen[0]?.from;
    t.same(raw[0]?.toString('hex'), Buffer.concat([header, Buffer.from(`one|${from?.address}:${from?.port}`)]).toString('hex'), 'the reply is what the backend sent, unchanged');
  });
}

void t.test('a wildcard socket answers from the address the client sent to, also dual-stack, with that address in the PROXY header', { ...WAIT }, async (t) => {
  for (const [wildcard, family, sentTo] of [['0.0.0.0', 4, '127.0.0.2'], ['::', 6, '127.0.0.3']] as const) {
    const { fd, port } = await listeningFd(family, wildcard);
    const proxy = udpProxyOpen(fd, { proxyV2: true }, () => undefined);
    t.teardown(() => proxy.close());
    const backend = await echo(t, 4);
    proxy.setTarget({ host: '127.0.0.1', port: backend.port });
    const c = await bound(t, 4);
    const from = new Promise<RemoteInfo>((resolve) => c.once('message', (_m, r) => resolve(r)));
    c.send('hello', port, sentTo);
    t.match(await from, { address: sentTo, port }, `${wildcard}: the reply comes from ${sentTo}`);
    const header = backend.seen[0]?.msg.subarray(0, 28);
    const dst = sentTo.split('.').map(Number);
    t.same([...(header?.subarray(12, 16) ?? [])], [0x21, 0x12, 0, 12], `${wildcard}: an IPv4 header`);
    t.same([...(header?.subarray(20, 24) ?? [])], dst, `${wildcard}: its destination is ${sentTo}`);
  }
});

void t.test('a flow expires after flowTimeoutMs without traffic', { ...WAIT }, async (t) => {
  const e = await engine(t, 4, { flowTimeoutMs: 100 });
  const backend = await echo(t, 4);
  e.proxy.setTarget({ host: LOOPBACK[4], port: backend.port });
  const c = await client(t, 4);
  c.send('x', e.port);
  await until(() => c.got.length === 1);
  t.equal(e.info().flows, 1);
  await until(() => e.info().flows === 0);
  t.match(e.info(), { expired: 1, evicted: 0 });
  await until(() => e.events.some((ev) => ev.type === 'count' && ev.flows === 0));
  // The next datagram makes a new flow: a new upstream socket.
  c.send('y', e.port);
  await until(() => c.got.length === 2);
  t.not(backend.seen[1]?.from.port, backend.seen[0]?.from.port, 'a new flow after expiry');
});

void t.test('traffic in either direction keeps a flow; the least recently active is evicted at maxFlows', { ...WAIT }, async (t) => {
  const e = await engine(t, 4, { maxFlows: 2 });
  const backend = await echo(t, 4);
  e.proxy.setTarget({ host: LOOPBACK[4], port: backend.port });
  const [a, b, c] = await Promise.all([client(t, 4), client(t, 4), client(t, 4)]);
  if (a === undefined || b === undefined || c === undefined) throw new Error('three clients');
  const flowOf = (s: string | undefined): string | undefined => s?.split('|')[1];
  a.send('a1', e.port);
  await until(() => a.got.length === 1);
  b.send('b1', e.port);
  await until(() => b.got.length === 1);
  a.send('a2', e.port); // a is now the most recently active
  await until(() => a.got.length === 2);
  c.send('c1', e.port); // b goes
  await until(() => c.got.length === 1);
  t.match(e.info(), { flows: 2, evicted: 1 });
  a.send('a3', e.port);
  await until(() => a.got.length === 3);
  t.equal(flowOf(a.got[2]), flowOf(a.got[0]), "a kept its flow");
  b.send('b2', e.port);
  await until(() => b.got.length === 2);
  t.not(flowOf(b.got[1]), flowOf(b.got[0]), 'b, the least recently active, had been evicted: a new flow');
  t.match(e.info(), { flows: 2, evicted: 2 });
});

void t.test('at maxFlows under many clients: evicted flows give their sockets back, and every client is answered in the end', { ...WAIT }, async (t) => {
  const backend = await echo(t, 4);
  const clients = await Promise.all(Array.from({ length: 40 }, () => client(t, 4)));
  const before = fdCount();
  const { fd, port } = await listeningFd(4);
  let most = 0;
  const proxy = udpProxyOpen(fd, { maxFlows: 8 }, (ev) => {
    if (ev.type === 'count') most = Math.max(most, ev.flows);
  });
  t.teardown(() => proxy.close());
  proxy.setTarget({ host: LOOPBACK[4], port: backend.port });
  // All at once: each burst makes more flows than the table holds, so replies to flows evicted before
  // the backend answered are lost (ICMP port unreachable), and their clients ask again.
  const ask = (): void =>
    clients.forEach((c, i) => {
      if (c.got.length === 0) c.send(`client-${i}`, port);
    });
  ask();
  const again = setInterval(ask, 100);
  t.teardown(() => clearInterval(again));
  await until(() => clients.every((c) => c.got.length > 0));
  clearInterval(again);
  t.ok(clients.every((c, i) => c.got.every((s) => s.startsWith(`client-${i}|`))), 'each client got only its own answers');
  const info = proxy.info();
  t.match(info, { flows: 8, failed: 0 });
  t.ok(info.evicted >= 32, `the least recently active made room (${info.evicted} evicted)`);
  t.ok(most <= 8, `never more than maxFlows (at most ${most})`);
  t.equal(fdCount(), before + 1 + 8, 'only the listening socket and 8 flow sockets are open');
});

void t.test('a full queue drops its oldest datagrams, counts them and says so', { ...WAIT }, async (t) => {
  const e = await engine(t, 4, { queueDatagrams: 3 });
  const backend = await echo(t, 4);
  const c = await client(t, 4);
  for (let i = 0; i < 5; i++) c.send(`d${i}`, e.port);
  await until(() => e.info().datagramsIn === 5);
  t.match(e.info(), { queued: 3, dropped: 2 });
  await until(() => e.events.some((ev) => ev.type === 'drop'));
  t.match(e.events.filter((ev) => ev.type === 'drop'), [{ type: 'drop', dropped: 2, truncated: 0, failed: 0 }]);
  e.proxy.setTarget({ host: LOOPBACK[4], port: backend.port });
  await until(() => c.got.length === 3);
  t.same(c.got.map((s) => s.split('|')[0]), ['d2', 'd3', 'd4'], 'the two oldest went');
});

void t.test('drop events come at most once a second; drops after the last event are told later without more traffic', { ...WAIT }, async (t) => {
  const { fd, port } = await listeningFd(4);
  const drops: Array<{ at: number; dropped: number }> = [];
  const proxy = udpProxyOpen(fd, { queueDatagrams: 1 }, (ev) => {
    if (ev.type === 'drop') drops.push({ at: performance.now(), dropped: ev.dropped });
  });
  t.teardown(() => proxy.close());
  const c = await client(t, 4);
  // No target: a queue of one keeps the last datagram and drops the one before.
  for (let i = 0; i < 3; i++) c.send(`a${i}`, port);
  await until(() => drops.length > 0);
  // Right after the first event: more drops, told only once a second has passed since it.
  for (let i = 0; i < 3; i++) c.send(`b${i}`, port);
  await until(() => proxy.info().datagramsIn === 6);
  t.equal(proxy.info().dropped, 5);
  await until(() => drops.at(-1)?.dropped === 5);
  // A lower bound only (the engine's rate limit, DROP_EVENT_MS in native/udp-proxy.h): a slow machine
  // makes the gaps longer, never shorter. 900: the loop time the engine reads is taken when the loop
  // wakes, a little before the JS callback here runs.
  const gaps = drops.slice(1).map((d, i) => Math.round(d.at - (drops[i]?.at ?? 0)));
  t.ok(gaps.length >= 1 && gaps.every((g) => g >= 900), `more than one event, at least a second apart (gaps ${gaps.join(', ')} ms)`);
  t.same(drops.map((d) => d.dropped), [...drops.map((d) => d.dropped)].sort((a, b) => a - b), 'running totals');
});

void t.test('the queue is bounded in bytes too', { ...WAIT }, async (t) => {
  const e = await engine(t, 6, { queueBytes: 1000 });
  const c = await client(t, 6);
  for (let i = 0; i < 4; i++) c.send(String(i).repeat(400), e.port);
  await until(() => e.info().datagramsIn === 4);
  t.match(e.info(), { queued: 2, queuedBytes: 800, dropped: 2 });
});

void t.test('ICMP port unreachable while the backend starts is retried: the first datagrams are answered', { ...WAIT }, async (t) => {
  const e = await engine(t, 4);
  // A port where nothing listens yet (taken, then freed).
  const probe = await bound(t, 4);
  const port = probe.address().port;
  probe.close();
  e.proxy.setTarget({ host: LOOPBACK[4], port });
  const c = await client(t, 4);
  c.send('early-1', e.port);
  c.send('early-2', e.port);
  await until(() => e.info().refused >= 1);
  await new Promise((r) => setTimeout(r, 200));
  await echo(t, 4, port);
  await until(() => c.got.length >= 2);
  t.same([...new Set(c.got.map((s) => s.split('|')[0]))].sort(), ['early-1', 'early-2']);
  t.ok(e.info().refused >= 1, `refusals counted (${e.info().refused})`);
  // Once the backend answered, nothing is kept or resent any more.
  c.send('later', e.port);
  await until(() => c.got.some((s) => s.startsWith('later|')));
});

void t.test('unsetTarget closes the flows and queues again', { ...WAIT }, async (t) => {
  const e = await engine(t, 4);
  const backend = await echo(t, 4);
  e.proxy.setTarget({ host: LOOPBACK[4], port: backend.port });
  const c = await client(t, 4);
  c.send('a', e.port);
  await until(() => c.got.length === 1);
  e.proxy.unsetTarget();
  t.match(e.info(), { flows: 0, hasTarget: false });
  c.send('b', e.port);
  await until(() => e.info().queued === 1);
  e.proxy.setTarget({ host: LOOPBACK[4], port: backend.port });
  await until(() => c.got.length === 2);
});

void t.test('close() releases every fd the engine owns, and is idempotent, also from an event', { ...WAIT }, async (t) => {
  const backend = await echo(t, 6);
  const clients = await Promise.all(Array.from({ length: 20 }, () => client(t, 6)));
  const before = fdCount();
  const { fd, port } = await listeningFd(6);
  let closedInEvent = false;
  const proxy = udpProxyOpen(fd, {}, (ev) => {
    if (ev.type === 'count' && ev.flows === 20) {
      proxy.close();
      proxy.close();
      closedInEvent = true;
    }
  });
  proxy.setTarget({ host: LOOPBACK[6], port: backend.port });
  clients.forEach((c, i) => c.send(`c${i}`, port));
  await until(() => closedInEvent);
  t.equal(proxy.info().active, false);
  t.equal(fdCount(), before, 'the listening fd and 20 flow sockets are closed');
  proxy.close();
  t.throws(() => proxy.setTarget({ host: LOOPBACK[6], port: backend.port }), { code: 'PODSOCK_ERR_NATIVE', details: { errno: 'EBADF' } });
});

void t.test('bad arguments are refused with the name of what was expected', { ...WAIT }, async (t) => {
  t.throws(() => udpProxyOpen(-1, {}, () => undefined), { code: 'PODSOCK_ERR_NATIVE', message: /non-negative integer file descriptor/ });
  t.throws(() => udpProxyOpen(0, { maxFlows: 0 }, () => undefined), { message: /maxFlows to be at least 1/ });
  t.throws(() => udpProxyOpen(0, { maxFlows: 70000 }, () => undefined), { message: /maxFlows to be an integer from 0 to 65536/ });
  t.throws(() => udpProxyOpen(0, { flowTimeoutMs: 1.5 }, () => undefined), { message: /flowTimeoutMs/ });
  const { fd } = await listeningFd(4);
  const e = udpProxyOpen(fd, {}, () => undefined);
  t.teardown(() => e.close());
  t.throws(() => e.setTarget({ host: 'localhost', port: 53 }), { message: /numeric IPv4 or IPv6 address, got 'localhost'/ });
  t.throws(() => e.setTarget({ host: '::1', port: 0 }), { message: /port to be an integer from 1 to 65535/ });
  // A stream socket is not a UDP socket: refused, and the caller keeps the fd.
  const other = dupFd(0);
  t.teardown(() => closeFd(other));
  t.throws(() => udpProxyOpen(other, {}, () => undefined), { code: 'PODSOCK_ERR_NATIVE', message: /^Failed to proxy UDP on fd '\d+': / });
});
