import net from 'node:net';
import t, { type Test } from 'tap';
import { MAX_REPLY_BYTES, parseHttpReply, timedGet } from '../../../src/demo/http-get.js';
import { isPodsockError } from '../../../src/errors.js';

/** A real TCP server on 127.0.0.1 whose connections `handle` serves; closed at teardown. */
async function server(t: Test, handle: (s: net.Socket, request: string) => void): Promise<number> {
  const srv = net.createServer((s) => {
    let req = '';
    s.on('data', (d: Buffer) => {
      req += d.toString('latin1');
      if (req.includes('\r\n\r\n')) handle(s, req);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return (srv.address() as net.AddressInfo).port;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

void t.test('parseHttpReply', async (t) => {
  t.same(parseHttpReply(Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\nhello\n')), { status: 200, body: 'hello\n' });
  t.same(parseHttpReply(Buffer.from('HTTP/1.1 404 Not Found\n\n')), { status: 404, body: '' });
  t.same(parseHttpReply(Buffer.from('HTTP/1.1 200 OK\r\n\r\nh\u00e9\r\n\r\nx')), { status: 200, body: 'h\u00e9\r\n\r\nx' }, 'body bytes kept as UTF-8');
  for (const bad of ['', 'hello', 'HTTP/1.0 200 OK\r\nno end of headers', 'SSH-2.0-x\r\n\r\n']) {
    let caught: unknown;
    try {
      parseHttpReply(Buffer.from(bad));
    } catch (err) {
      caught = err;
    }
    t.ok(isPodsockError(caught, 'PODSOCK_ERR_DEMO'), `refused ${JSON.stringify(bad)}`);
  }
});

void t.test('timedGet times the first byte and reads the whole reply', async (t) => {
  let seen = '';
  const port = await server(t, (s, req) => {
    seen = req;
    setTimeout(() => {
      s.write('HTTP/1.0 200 OK\r\n');
      setTimeout(() => s.end('\r\nhello\n'), 300);
    }, 200);
  });
  const r = await timedGet('127.0.0.1', port, '/x', 10_000);
  t.equal(seen, `GET /x HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 200);
  t.equal(r.body, 'hello\n');
  t.ok(r.firstByteMs >= 190, `first byte after the server's 200 ms delay (${r.firstByteMs} ms)`);
  t.ok(r.firstByteMs < 5_000, 'and not after the rest of the body');
});

void t.test('timedGet fails with PODSOCK_ERR_DEMO, bounded', async (t) => {
  const silent = await server(t, () => undefined);
  const e1 = await rejection(timedGet('127.0.0.1', silent, '/', 300));
  t.ok(isPodsockError(e1, 'PODSOCK_ERR_DEMO'));
  t.match(e1.message, `GET 'http://127.0.0.1:${silent}/' failed: no complete reply within 300 ms`);

  const closer = await server(t, (s) => s.end());
  t.match((await rejection(timedGet('127.0.0.1', closer, '/', 10_000))).message, 'the connection closed without a reply');

  const flood = await server(t, (s) => {
    s.write('HTTP/1.0 200 OK\r\n\r\n');
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const more = (): void => {
      while (!s.destroyed && s.write(chunk));
      if (!s.destroyed) s.once('drain', more);
    };
    more();
  });
  t.match((await rejection(timedGet('127.0.0.1', flood, '/', 10_000))).message, `reply larger than ${MAX_REPLY_BYTES} bytes`);

  const garbage = await server(t, (s) => s.end('garbage\r\n\r\n'));
  t.match((await rejection(timedGet('127.0.0.1', garbage, '/', 10_000))).message, "Not an HTTP reply: 'garbage");

  // A port that was free a moment ago: nobody listens on it once this server is closed.
  const tmp = net.createServer();
  await new Promise<void>((resolve) => tmp.listen(0, '127.0.0.1', resolve));
  const freePort = (tmp.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => tmp.close(() => resolve()));
  const e5 = await rejection(timedGet('127.0.0.1', freePort, '/', 10_000));
  t.ok(isPodsockError(e5, 'PODSOCK_ERR_DEMO'));
  t.match(e5.message, 'ECONNREFUSED');
});
