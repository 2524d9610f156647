import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { pipeSockets, resetOrDestroy, type PipeResult } from '../../../src/proxy/pipe.js';
import { tmpDir } from '../../helpers/tmp-dir.js';
import { backend, listenLoopback as listen } from '../../helpers/backend.js';

/**
 * A minimal front: every accepted socket is piped to a fresh connection to `backendPort`.
 * Returns the front's port and the results pipeSockets reported, in completion order.
 */
async function front(t: Test, backendPort: number): Promise<{ port: number; results: PipeResult[]; done: Promise<void>[] }> {
  const results: PipeResult[] = [];
  const done: Promise<void>[] = [];
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    const upstream = connect({ port: backendPort, host: '127.0.0.1', allowHalfOpen: true });
    done.push(
      new Promise<void>((resolve) => {
        upstream.once('connect', () => {
          client.resume();
          pipeSockets(client, upstream, (r) => {
            results.push(r);
            resolve();
          });
        });
      }),
    );
  });
  t.teardown(() => server.close());
  return { port: await listen(server), results, done };
}

void t.test('half-close both ways; onDone reports a clean finish', async (t) => {
  const { port: bport } = await backend(t, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`got ${n}`));
  });
  const { port, results, done } = await front(t, bport);
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let reply = '';
  c.on('data', (d: Buffer) => (reply += d.toString()));
  c.end(Buffer.alloc(1_000_000, 1));
  await once(c, 'end');
  t.equal(reply, 'got 1000000');
  c.end();
  await once(c, 'close');
  await Promise.all(done);
  t.same(results, [null]);
});

void t.test('an upstream error resets the client and is reported', async (t) => {
  const { port: bport } = await backend(t, (s) => {
    s.write('x');
    setTimeout(() => s.resetAndDestroy(), 20);
  });
  const { port, results, done } = await front(t, bport);
  const c = connect(port, '127.0.0.1');
  let code: string | undefined;
  c.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
  await new Promise((resolve) => c.once('close', resolve));
  t.equal(code, 'ECONNRESET');
  await Promise.all(done);
  t.equal(results.length, 1);
  t.equal((results[0] as NodeJS.ErrnoException | null)?.code, 'ECONNRESET');
});

void t.test('destroying one side from outside resets the other', async (t) => {
  let backendCode: string | undefined;
  let backendClosed!: () => void;
  const closed = new Promise<void>((resolve) => (backendClosed = resolve));
  const { port: bport } = await backend(t, (s) => {
    s.on('error', (e: NodeJS.ErrnoException) => (backendCode = e.code));
    s.on('close', backendClosed);
    s.write('hello');
  });
  // The proxy side of a client connection, piped to the backend.
  let piped!: (pair: Socket) => void;
  const proxySide = new Promise<Socket>((resolve) => (piped = resolve));
  let pipeDone!: (r: PipeResult) => void;
  const result = new Promise<PipeResult>((resolve) => (pipeDone = resolve));
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ port: bport, host: '127.0.0.1', allowHalfOpen: true });
    upstream.once('connect', () => {
      pipeSockets(client, upstream, pipeDone);
      piped(client);
    });
  });
  t.teardown(() => server.close());
  const port = await listen(server);
  const c = connect(port, '127.0.0.1');
  c.on('error', () => {});
  t.teardown(() => c.destroy());
  const [first] = (await once(c, 'data')) as [Buffer];
  t.equal(first.toString(), 'hello');
  (await proxySide).destroy(); // what Proxy.destroy() does to a piped client
  await closed;
  t.equal(backendCode, 'ECONNRESET', 'the backend saw a reset, not a clean EOF');
  t.equal(await result, null, 'no error of its own: the connection was cut from outside');
});

void t.test('resetOrDestroy: TCP gets a reset, unix a close, destroyed sockets are left alone', async (t) => {
  const dir = tmpDir(t, 'podsock-pipe-');
  const path = join(dir, 's.sock');
  const peers: Socket[] = [];
  const unixServer = createServer((s) => peers.push(s));
  unixServer.listen(path);
  await once(unixServer, 'listening');
  t.teardown(() => {
    for (const p of peers) p.destroy();
    unixServer.close();
  });
  const u = connect(path);
  await once(u, 'connect');
  resetOrDestroy(u);
  t.equal(u.destroyed, true, 'unix socket destroyed without throwing');
  resetOrDestroy(u);

  const tcpPeer = new Promise<string | undefined>((resolve) => {
    void backend(t, (s) => {
      let code: string | undefined;
      s.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
      s.on('close', () => resolve(code));
    }).then(async ({ port }) => {
      const c = connect(port, '127.0.0.1');
      await once(c, 'connect');
      resetOrDestroy(c);
    });
  });
  t.equal(await tcpPeer, 'ECONNRESET', 'the TCP peer saw a reset');
});
