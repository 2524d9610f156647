import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connectUpstream, describeTarget, type ConnectOptions } from '../../../src/proxy/upstream.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { latePort } from '../late-port.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

function opts(over: Partial<ConnectOptions> = {}): ConnectOptions {
  return { timeoutMs: 2000, attempts: 3, backoffMs: 5, highWaterMark: 32 * 1024, signal: new AbortController().signal, ...over };
}

function serve(t: Test, server: Server): void {
  t.teardown(() => server.close());
}

void t.test('connects: allowHalfOpen, noDelay, the requested highWaterMark', async (t) => {
  const server = createServer((s) => s.end());
  serve(t, server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const s = await connectUpstream({ host: '127.0.0.1', port }, opts());
  t.teardown(() => s.destroy());
  t.equal(s.allowHalfOpen, true);
  t.equal(s.writableHighWaterMark, 32 * 1024);
  t.equal(s.readableHighWaterMark, 32 * 1024);
  t.equal(s.remotePort, port);
});

void t.test('gives up after the attempts with PODSOCK_ERR_BACKEND and the last error', async (t) => {
  const port = await latePort();
  const started = Date.now();
  const err = await connectUpstream({ host: '127.0.0.1', port }, opts({ attempts: 3, backoffMs: 40 })).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(err, {
    code: 'PODSOCK_ERR_BACKEND',
    message: `Failed to connect to backend '127.0.0.1:${port}' after 3 attempt(s): ECONNREFUSED`,
    cause: { code: 'ECONNREFUSED' },
    details: { attempts: 3 },
  });
  // Backoff 40 ms then 80 ms: at least 120 ms went by (no upper bound: shared machines are slow).
  t.ok(Date.now() - started >= 110, 'backed off between attempts');
});

void t.test('a unix backend that appears during the retries is reached', async (t) => {
  const dir = tmpDir(t, 'podsock-upstream-');
  const path = join(dir, 'late.sock');
  const server = createServer((s) => s.end('hi'));
  serve(t, server);
  setTimeout(() => server.listen(path), 30);
  const s = await connectUpstream({ path }, opts({ attempts: 10, backoffMs: 20 }));
  t.teardown(() => s.destroy());
  s.setEncoding('utf8');
  const [data] = (await once(s, 'data')) as [string];
  t.equal(data, 'hi');
});

void t.test('aborting stops the retries with the signal reason', async (t) => {
  const port = await latePort();
  const ac = new AbortController();
  const p = connectUpstream({ host: '127.0.0.1', port }, opts({ attempts: 100, backoffMs: 50, signal: ac.signal }));
  setTimeout(() => ac.abort(new Error('client left')), 30);
  await t.rejects(p, { message: 'client left' });
  const already = new AbortController();
  already.abort(new Error('before'));
  await t.rejects(connectUpstream({ host: '127.0.0.1', port }, opts({ signal: already.signal })), { message: 'before' });
});

void t.test('a connect that hangs times out per attempt', async (t) => {
  // A listener nobody accepts on, with its accept queue full: Linux drops further SYNs
  // (tcp_v4_syn_recv_sock / sk_acceptq_is_full), so the next connect() hangs until our deadline.
  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 0 });
  t.teardown(() => closeFd(fd));
  const port = inspectFd(fd).port as number;
  const fillers: Socket[] = [];
  t.teardown(() => fillers.forEach((s) => s.destroy()));
  // With backlog 0 one queued connection fills the queue (full means ack_backlog > max_ack_backlog).
  const filler = connect(port, '127.0.0.1');
  filler.on('error', () => {});
  fillers.push(filler);
  await once(filler, 'connect');
  const err = await connectUpstream({ host: '127.0.0.1', port }, opts({ attempts: 2, timeoutMs: 150 })).then(
    (s) => {
      s.destroy();
      return null;
    },
    (e: unknown) => e,
  );
  t.match(err, { code: 'PODSOCK_ERR_BACKEND', message: `'127.0.0.1:${port}' after 2 attempt(s): ETIMEDOUT` });
});

void t.test('describeTarget', async (t) => {
  t.equal(describeTarget({ host: '127.0.0.1', port: 80 }), '127.0.0.1:80');
  t.equal(describeTarget({ host: '::1', port: 80 }), '[::1]:80');
  t.equal(describeTarget({ path: '/run/x.sock' }), '/run/x.sock');
});
