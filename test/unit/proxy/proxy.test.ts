import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { PodsockError } from '../../../src/errors.js';
import { Proxy, type PipeKind, type ProxyOptions } from '../../../src/proxy/proxy.js';
import { closeFd, dupFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { tmpDir as tmp } from '../../helpers/tmp-dir.js';
import { backend, replyOnEnd } from '../../helpers/backend.js';

// ---------------------------------------------------------------- helpers

/** A listening TCP socket on 127.0.0.1, as systemd would pass it (not adopted by Node). */
function tcpListener(t: Test, backlog = 4096): { fd: number; port: number } {
  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog });
  t.teardown(() => closeFd(fd));
  const port = inspectFd(fd).port;
  if (port === undefined) throw new Error('no port');
  return { fd, port };
}

/** The data path under test: js-path.test.ts runs this whole file again with the JS data path, native-path-poll.test.ts on the relay's poll engine. */
const PIPE: PipeKind = process.env.PODSOCK_TEST_PROXY_PIPE === 'js' ? 'js' : 'native';

function makeProxy(t: Test, opts: Partial<ProxyOptions> & Pick<ProxyOptions, 'listeners'>): Proxy {
  const proxy = new Proxy({ maxConnections: 1000, maxPending: 1000, connectBackoffMs: 10, pipe: PIPE, ...opts });
  t.teardown(() => proxy.destroy());
  return proxy;
}

interface Exchange {
  reply: string;
  error: string | null;
}

/** Connect, send `request`, half-close, read until EOF or error. */
function exchange(port: number | string, request: string, client?: Socket): Promise<Exchange> {
  const s = client ?? (typeof port === 'number' ? connect(port, '127.0.0.1') : connect(port));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    s.on('close', () => resolve({ reply: Buffer.concat(chunks).toString(), error }));
    s.end(request);
  });
}

function connected(port: number | string): Promise<Socket> {
  const s = typeof port === 'number' ? connect(port, '127.0.0.1') : connect(port);
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolve when the proxy's active count reaches `n` (event-driven, no polling). */
function activeReaches(proxy: Proxy, n: number): Promise<void> {
  if (proxy.activeCount === n) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (c: number): void => {
      if (c === n) {
        proxy.off('count', on);
        resolve();
      }
    };
    proxy.on('count', on);
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- tests

void t.test('connections made before the backend is ready are held, then all served in arrival order', async (t) => {
  const { fd, port } = tcpListener(t);
  const order: string[] = [];
  const { port: bport } = await backend(t, (s) => {
    s.once('data', (c: Buffer) => order.push(c.toString().split('|')[0] ?? ''));
    replyOnEnd(s);
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();

  const N = 200;
  const clients: Socket[] = [];
  // Connect one after another so the kernel's accept queue order is known.
  for (let i = 0; i < N; i++) clients.push(await connected(port));
  await activeReaches(proxy, N);
  t.equal(proxy.heldCount, N, 'all held');
  t.equal(proxy.stats.held, N);
  const replies = Promise.all(clients.map((c, i) => exchange(port, `${i}|payload-${i}`, c)));
  await delay(50);
  t.equal(order.length, 0, 'nothing reached the backend before setTargets');

  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  const results = await replies;
  t.same(
    results,
    clients.map((_, i) => ({ reply: `reply:${i}|payload-${i}`, error: null })),
    'every client got its full reply, none refused or reset',
  );
  t.same(order, clients.map((_, i) => String(i)), 'the backend saw the connections in arrival order');
  await activeReaches(proxy, 0);
  t.match(proxy.stats, { accepted: N, served: N, failed: 0, held: N, peakActive: N });
});

void t.test('half-close: the client ends its side and still receives the whole reply', async (t) => {
  const { fd, port } = tcpListener(t);
  const reply = Buffer.alloc(3 * 1024 * 1024, 'r');
  const { port: bport } = await backend(t, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => {
      s.write(`${n}:`);
      s.end(reply);
    });
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  const request = 'x'.repeat(100_000);
  const res = await exchange(port, request);
  t.equal(res.error, null);
  t.equal(res.reply.length, `${request.length}:`.length + reply.length);
  t.equal(res.reply, `${request.length}:${reply.toString()}`);
});

void t.test('half-close the other way: the backend ends first, the client keeps sending', async (t) => {
  const { fd, port } = tcpListener(t);
  let received = '';
  let backendGotEnd!: () => void;
  const backendDone = new Promise<void>((resolve) => (backendGotEnd = resolve));
  const { port: bport } = await backend(t, (s) => {
    s.end('bye'); // the server half-closes at once and keeps reading
    s.on('data', (c: Buffer) => (received += c.toString()));
    s.on('end', backendGotEnd);
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => c.destroy());
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString()));
  await once(c, 'end');
  t.equal(got, 'bye');
  c.write('still ');
  c.end('talking');
  await backendDone;
  t.equal(received, 'still talking', 'data sent after the backend half-closed still arrives');
  await activeReaches(proxy, 0);
});

void t.test('a unix listener to a unix backend', async (t) => {
  const dir = tmp(t);
  const front = join(dir, 'front.sock');
  const fd = listenSocket({ kind: 'unix', path: front, backlog: 128 });
  t.teardown(() => closeFd(fd));
  const back = join(dir, 'back.sock');
  const server = createServer({ allowHalfOpen: true }, replyOnEnd);
  server.listen(back);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const proxy = makeProxy(t, { listeners: [{ name: 'api', fd }] });
  await proxy.start();
  proxy.setTargets((name) => {
    t.equal(name, 'api');
    return { path: back };
  });
  t.same(await exchange(front, 'over unix'), { reply: 'reply:over unix', error: null });
  await proxy.stopAccepting();
  await proxy.close();
  t.ok(existsSync(front), 'the listening path is never unlinked');
  t.equal(inspectFd(fd).listening, true);
});

void t.test('each listener goes to its own target', async (t) => {
  const a = tcpListener(t);
  const b = tcpListener(t);
  const ba = await backend(t, (s) => s.end('from-a'));
  const bb = await backend(t, (s) => s.end('from-b'));
  const proxy = makeProxy(t, { listeners: [{ name: 'a', fd: a.fd }, { name: 'b', fd: b.fd }] });
  await proxy.start();
  proxy.setTargets((name) => ({ host: '127.0.0.1', port: name === 'a' ? ba.port : bb.port }));
  t.same(await exchange(a.port, ''), { reply: 'from-a', error: null });
  t.same(await exchange(b.port, ''), { reply: 'from-b', error: null });
});

void t.test('a backend reset resets its client and leaves other connections alone', async (t) => {
  const { fd, port } = tcpListener(t);
  const { port: bport } = await backend(t, (s) => {
    s.on('error', () => {});
    s.once('data', (c: Buffer) => {
      if (c.toString().startsWith('reset')) {
        s.write('partial');
        setTimeout(() => s.resetAndDestroy(), 20);
      } else {
        const body = c;
        s.on('end', () => s.end(`ok:${body.toString()}`));
      }
    });
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));

  // A long-lived healthy connection opened first, finished after the reset.
  const healthy = await connected(port);
  const healthyDone = new Promise<string>((resolve) => {
    let got = '';
    healthy.on('data', (c: Buffer) => (got += c.toString()));
    healthy.on('close', () => resolve(got));
  });
  healthy.write('good');
  const victim = await connected(port);
  const victimDone = new Promise<{ got: string; code: string | undefined }>((resolve) => {
    let got = '';
    let code: string | undefined;
    victim.on('data', (c: Buffer) => (got += c.toString()));
    victim.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
    victim.on('close', () => resolve({ got, code }));
  });
  victim.write('reset me');
  const v = await victimDone;
  t.equal(v.code, 'ECONNRESET', 'the client sees a reset, not a clean EOF');
  t.equal(v.got, 'partial');
  healthy.end();
  t.equal(await healthyDone, 'ok:good', 'the other connection is unaffected');
  await activeReaches(proxy, 0);
  t.equal(proxy.stats.served, 2);
});

void t.test('a client reset resets the backend side', async (t) => {
  const { fd, port } = tcpListener(t);
  let backendError: string | undefined;
  const backendClosed = new Promise<void>((resolve) => {
    void backend(t, (s) => {
      s.on('error', (e: NodeJS.ErrnoException) => (backendError = e.code));
      s.on('close', () => resolve());
      s.write('hello');
    }).then(({ port: bport }) => proxy.setTargets(() => ({ host: '127.0.0.1', port: bport })));
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  const c = await connected(port);
  await once(c, 'data');
  c.resetAndDestroy();
  await backendClosed;
  t.equal(backendError, 'ECONNRESET');
  await activeReaches(proxy, 0);
});

void t.test('bulk transfer both ways is byte-exact with bounded buffering', async (t) => {
  const { fd, port } = tcpListener(t);
  // Echo backend with backpressure.
  const { port: bport } = await backend(t, (s) => s.pipe(s));
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));

  const TOTAL = 64 * 1024 * 1024;
  const block = Buffer.alloc(256 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 7 + (i >> 8)) & 0xff;
  const rssBefore = process.memoryUsage().rss;
  let maxBuffered = 0;
  const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, proxy.bufferedBytes)), 2);
  t.teardown(() => clearInterval(sampler));

  const c = await connected(port);
  let received = 0;
  let mismatch = -1;
  const done = new Promise<void>((resolve, reject) => {
    c.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length && mismatch < 0; i++) {
        if (chunk[i] !== block[(received + i) % block.length]) mismatch = received + i;
      }
      received += chunk.length;
    });
    c.on('end', () => resolve());
    c.on('error', reject);
  });
  let sent = 0;
  const pump = (): void => {
    while (sent < TOTAL) {
      sent += block.length;
      if (!c.write(block)) {
        c.once('drain', pump);
        return;
      }
    }
    c.end();
  };
  pump();
  await done;
  clearInterval(sampler);
  t.equal(received, TOTAL, 'every byte came back');
  t.equal(mismatch, -1, 'byte-exact');
  const growth = process.memoryUsage().rss - rssBefore;
  t.comment(`rss growth ${(growth / 1048576).toFixed(1)} MiB, max proxy buffer ${(maxBuffered / 1024).toFixed(0)} KiB`);
  // Default bufferBytes 64 KiB: at most ~4 x (64 + 64) KiB per connection.
  t.ok(maxBuffered <= 512 * 1024, `proxy buffering stayed bounded (${maxBuffered} bytes)`);
  // Generous: client, backend and proxy share this process; buffering everything would take > 128 MiB.
  t.ok(growth < 100 * 1024 * 1024, `rss growth bounded (${growth} bytes)`);
});

void t.test('backpressure: a client that stops reading does not make the proxy buffer', async (t) => {
  const { fd, port } = tcpListener(t);
  const TOTAL = 64 * 1024 * 1024;
  let written = 0;
  let stalled!: () => void;
  const backendStalled = new Promise<void>((r) => (stalled = r));
  const { port: bport } = await backend(t, (s) => {
    s.on('error', () => {});
    const chunk = Buffer.alloc(64 * 1024, 'b');
    const pump = (): void => {
      while (written < TOTAL) {
        written += chunk.length;
        if (!s.write(chunk)) {
          // If the backend is still blocked 300 ms later, backpressure has reached it.
          const timer = setTimeout(stalled, 300);
          s.once('drain', () => {
            clearTimeout(timer);
            pump();
          });
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }], bufferBytes: 16 * 1024 });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  const c = await connected(port);
  c.pause(); // a client that reads nothing
  await backendStalled;
  t.ok(written < TOTAL, `the backend was stopped by flow control after ${written} bytes`);
  t.ok(proxy.bufferedBytes <= 4 * (16 + 64) * 1024, `proxy buffers ${proxy.bufferedBytes} bytes`);
  // Now read everything: nothing was lost.
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  c.resume();
  await once(c, 'end');
  t.equal(got, TOTAL);
  c.destroy();
});

void t.test('maxConnections: the next connection waits in the kernel, never accepted-then-closed', async (t) => {
  const { fd, port } = tcpListener(t);
  const release: Array<() => void> = [];
  const { port: bport } = await backend(t, (s) => {
    s.on('error', () => {});
    s.once('data', (c: Buffer) => {
      const body = c.toString();
      if (body.startsWith('hold')) release.push(() => s.end(`done:${body}`));
      else s.end(`done:${body}`);
    });
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }], maxConnections: 2 });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));

  const first = await connected(port);
  const firstDone = exchange(port, 'hold-1', first);
  const second = await connected(port);
  const secondDone = exchange(port, 'hold-2', second);
  await activeReaches(proxy, 2);
  t.equal(proxy.accepting, false, 'stopped accepting at the limit');

  // The third completes the TCP handshake with the kernel but is not accepted.
  const third = await connected(port);
  let thirdEvents = '';
  third.on('data', () => (thirdEvents += 'data '));
  third.on('end', () => (thirdEvents += 'end '));
  const thirdDone = exchange(port, 'third', third);
  await delay(300);
  t.equal(thirdEvents, '', 'the third connection got nothing: not closed, not served');
  t.equal(proxy.stats.accepted, 2, 'and was not accepted');
  t.equal(proxy.activeCount, 2);

  while (release.length < 2) await delay(10);
  release.shift()?.();
  t.same(await firstDone, { reply: 'done:hold-1', error: null });
  t.same(await thirdDone, { reply: 'done:third', error: null }, 'served once there was room');
  release.shift()?.();
  t.same(await secondDone, { reply: 'done:hold-2', error: null });
  await activeReaches(proxy, 0);
  t.equal(proxy.stats.accepted, 3);
  t.equal(proxy.stats.peakActive, 2);
  t.equal(proxy.accepting, true, 'accepting again');
});

void t.test('maxPending: held connections beyond the bound wait in the kernel', async (t) => {
  const { fd, port } = tcpListener(t);
  const { port: bport } = await backend(t, replyOnEnd);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }], maxPending: 3 });
  await proxy.start();
  const clients: Socket[] = [];
  for (let i = 0; i < 5; i++) clients.push(await connected(port));
  const results = Promise.all(clients.map((c, i) => exchange(port, `r${i}`, c)));
  await activeReaches(proxy, 3);
  await delay(200);
  t.equal(proxy.stats.accepted, 3, 'only maxPending accepted before ready');
  t.equal(proxy.heldCount, 3);
  t.equal(proxy.accepting, false);
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  t.same(
    await results,
    clients.map((_, i) => ({ reply: `reply:r${i}`, error: null })),
  );
  t.equal(proxy.stats.accepted, 5);
});

void t.test('stopAccepting leaves new connections queued on an intact socket', async (t) => {
  const { fd, port } = tcpListener(t);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  await proxy.stopAccepting();
  t.equal(proxy.accepting, false);
  const c = await connected(port); // not refused: the kernel completes the handshake
  const result = exchange(port, 'later', c);
  await delay(100);
  t.equal(proxy.stats.accepted, 0);
  const info = inspectFd(fd);
  t.equal(info.listening, true, 'the shared socket still listens (not shut down)');

  // A fresh server on the original socket (as the next activation would get it) accepts it.
  const server = createServer({ allowHalfOpen: true }, replyOnEnd);
  server.listen({ fd: dupFd(fd) }, 4096);
  t.teardown(() => server.close());
  t.same(await result, { reply: 'reply:later', error: null });
});

void t.test('start() resumes after stopAccepting and serves what queued meanwhile', async (t) => {
  const { fd, port } = tcpListener(t);
  const { port: bport } = await backend(t, replyOnEnd);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  await proxy.stopAccepting();
  const queued = exchange(port, 'queued');
  await delay(50);
  t.equal(proxy.stats.accepted, 0);
  await proxy.start();
  t.same(await queued, { reply: 'reply:queued', error: null });
});

void t.test('the listen backlog of the shared socket is kept', async (t) => {
  const { fd, port } = tcpListener(t, 4096);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  // State Recv-Q Send-Q Local Peer; Send-Q is the backlog of a listening socket.
  const sendQ = out.trim().split(/\s+/)[2];
  t.equal(sendQ, '4096', 'Node did not re-listen with 511');
});

void t.test('unsetTargets holds new connections again until the next setTargets', async (t) => {
  const { fd, port } = tcpListener(t);
  const one = await backend(t, (s) => s.end('one'));
  const two = await backend(t, (s) => s.end('two'));
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: one.port }));
  t.same(await exchange(port, ''), { reply: 'one', error: null });
  await activeReaches(proxy, 0);
  proxy.unsetTargets();
  const c = await connected(port);
  const r = exchange(port, '', c);
  await activeReaches(proxy, 1);
  t.equal(proxy.heldCount, 1);
  proxy.setTargets(() => ({ host: '127.0.0.1', port: two.port }));
  t.same(await r, { reply: 'two', error: null });
});

void t.test('an unreachable backend closes that client after the retries and reports it', async (t) => {
  const { fd, port } = tcpListener(t);
  const other = tcpListener(t);
  // A port that was just free: connecting to it is refused.
  const free = await backend(t, () => {});
  const deadPort = free.port;
  free.server.close();
  await once(free.server, 'close');
  const good = await backend(t, (s) => s.end('fine'));
  const proxy = makeProxy(t, {
    listeners: [{ name: 'bad', fd }, { name: 'good', fd: other.fd }],
    connectAttempts: 3,
    connectBackoffMs: 5,
  });
  const errors: Array<{ err: PodsockError; listener: string }> = [];
  proxy.on('connectionError', (err, info) => errors.push({ err, listener: info.listener }));
  await proxy.start();
  proxy.setTargets((name) => ({ host: '127.0.0.1', port: name === 'bad' ? deadPort : good.port }));
  const [bad, fine] = await Promise.all([exchange(port, 'x'), exchange(other.port, '')]);
  t.equal(bad.reply, '');
  t.ok(bad.error === null || bad.error === 'ECONNRESET', `client closed (${bad.error})`);
  t.same(fine, { reply: 'fine', error: null }, 'the other listener is unaffected');
  t.equal(errors.length, 1);
  t.equal(errors[0]?.listener, 'bad');
  t.equal(errors[0]?.err.code, 'PODSOCK_ERR_BACKEND');
  t.match(errors[0]?.err.message, `'127.0.0.1:${deadPort}' after 3 attempt(s): ECONNREFUSED`);
  t.match(proxy.stats, { failed: 1, served: 1, accepted: 2 });
});

void t.test('a backend that comes up during the retries is reached', async (t) => {
  const { fd, port } = tcpListener(t);
  const probe = await backend(t, () => {});
  const bport = probe.port;
  probe.server.close();
  await once(probe.server, 'close');
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }], connectAttempts: 8, connectBackoffMs: 20 });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  const result = exchange(port, 'late');
  await delay(60);
  const late = createServer({ allowHalfOpen: true }, replyOnEnd);
  t.teardown(() => late.close());
  late.listen(bport, '127.0.0.1');
  t.same(await result, { reply: 'reply:late', error: null });
  t.equal(proxy.stats.failed, 0);
});

void t.test('a target resolver that throws fails only that connection', async (t) => {
  const { fd, port } = tcpListener(t);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  const errors: PodsockError[] = [];
  proxy.on('connectionError', (err) => errors.push(err));
  await proxy.start();
  proxy.setTargets(() => {
    throw new Error('no backend for this socket');
  });
  const r = await exchange(port, 'x');
  t.equal(r.reply, '');
  t.equal(errors[0]?.code, 'PODSOCK_ERR_BACKEND');
  t.match(errors[0]?.message, "socket 'web': no backend for this socket");
});

void t.test('a target given by name is looked up', async (t) => {
  const { fd, port } = tcpListener(t);
  const { port: bport } = await backend(t, replyOnEnd);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: 'localhost', port: bport }));
  t.same(await exchange(port, 'by name'), { reply: 'reply:by name', error: null });
});

void t.test('unsetTargets while connecting: the connection is held again with its bytes, then served', async (t) => {
  const { fd, port } = tcpListener(t);
  // A backend whose accept queue is full (backlog 0, one connection queued): a connect to it hangs.
  const hole = tcpListener(t, 0);
  const filler = await connected(hole.port);
  t.teardown(() => filler.destroy());
  const { port: bport } = await backend(t, replyOnEnd);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }], connectTimeoutMs: 60_000 });
  await proxy.start();
  const c = await connected(port);
  const result = exchange(port, 'kept', c); // sent (and ended) while held: Node reads it
  await activeReaches(proxy, 1);
  await delay(100);
  proxy.setTargets(() => ({ host: '127.0.0.1', port: hole.port }));
  await delay(100);
  t.equal(proxy.heldCount, 0, 'connecting to the backend that does not answer');
  proxy.unsetTargets();
  t.equal(proxy.heldCount, 1, 'held again');
  t.equal(proxy.stats.held, 2);
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  t.same(await result, { reply: 'reply:kept', error: null }, 'the bytes read before reached the new backend, then the EOF');
  t.match(proxy.stats, { served: 1, failed: 0, accepted: 1 });
});

void t.test("'active' and 'idle' fire on the edges of the active set", async (t) => {
  const { fd, port } = tcpListener(t);
  const { port: bport } = await backend(t, replyOnEnd);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  const events: string[] = [];
  proxy.on('active', () => events.push('active'));
  proxy.on('idle', () => events.push('idle'));
  await proxy.start();
  const a = await connected(port);
  const b = await connected(port);
  await activeReaches(proxy, 2);
  t.same(events, ['active']);
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  await exchange(port, 'a', a);
  t.same(events, ['active'], 'not idle while another connection is active');
  await exchange(port, 'b', b);
  await activeReaches(proxy, 0);
  t.same(events, ['active', 'idle']);
});

void t.test('a held client that goes away is dropped from the hold queue', async (t) => {
  const { fd, port } = tcpListener(t);
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  const c = await connected(port);
  await activeReaches(proxy, 1);
  c.resetAndDestroy();
  await activeReaches(proxy, 0);
  t.equal(proxy.heldCount, 0);
});

void t.test('close() waits for live connections; destroy() resets them; both idempotent', async (t) => {
  const { fd, port } = tcpListener(t);
  let endBackend!: () => void;
  const { port: bport } = await backend(t, (s) => {
    s.on('error', () => {});
    endBackend = () => s.end('late reply');
  });
  const proxy = makeProxy(t, { listeners: [{ name: 'web', fd }] });
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  const c = await connected(port);
  const r = exchange(port, 'q', c);
  await activeReaches(proxy, 1);
  while (proxy.stats.served < 1) await delay(5);
  let closed = false;
  const closing = proxy.close().then(() => (closed = true));
  await delay(100);
  t.equal(closed, false, 'close() waits for the live connection');
  t.equal(proxy.accepting, false);
  endBackend();
  t.same(await r, { reply: 'late reply', error: null });
  await closing;
  await proxy.close();
  proxy.destroy();
  await t.rejects(proxy.start(), { code: 'PODSOCK_ERR_INTERNAL' });

  // destroy() with a live connection
  const { fd: fd2, port: port2 } = tcpListener(t);
  const p2 = makeProxy(t, { listeners: [{ name: 'web', fd: fd2 }] });
  await p2.start();
  const held = await connected(port2);
  const heldResult = exchange(port2, '', held);
  await activeReaches(p2, 1);
  const closing2 = p2.close();
  p2.destroy();
  await closing2;
  const hr = await heldResult;
  t.equal(hr.reply, '');
  t.equal(p2.activeCount, 0);
  p2.destroy();
});

void t.test('destroy() on a proxy that never started', async (t) => {
  const { fd } = tcpListener(t);
  const proxy = new Proxy({ listeners: [{ name: 'web', fd }], maxConnections: 1, maxPending: 1 });
  proxy.destroy();
  proxy.destroy();
  await proxy.close();
  t.equal(proxy.activeCount, 0);
});

void t.test('refuses a socket that is not listening', async (t) => {
  const { port } = tcpListener(t);
  const c = await connected(port);
  t.teardown(() => c.destroy());
  const cfd = (c as unknown as { _handle: { fd: number } })._handle.fd;
  const proxy = makeProxy(t, { listeners: [{ name: 'conn', fd: cfd }] });
  await t.rejects(proxy.start(), { code: 'PODSOCK_ERR_BAD_SOCKET', message: /'conn'.*listening stream socket/ });
  t.equal(proxy.accepting, false);
});

void t.test('rejects invalid options', async (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => new Proxy({ listeners: [], maxConnections: bad, maxPending: 1 }), {
      code: 'PODSOCK_ERR_INTERNAL',
    });
  }
});
