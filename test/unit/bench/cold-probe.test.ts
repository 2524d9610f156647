import net from 'node:net';
import t, { type Test } from 'tap';
import { COLD_REQUEST, firstByte } from '../../../scripts/bench/cold-probe.js';

const BODY = 'x'.repeat(1024);
const OK = `HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n${BODY}`;

/** A server that answers every connection with `reply` after `delayMs` (null: never answers), then closes. */
async function server(t: Test, reply: string | null, delayMs = 0): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const s = net.createServer((c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.once('data', (d: Buffer) => {
      requests.push(d.toString('latin1'));
      if (reply === null) return;
      setTimeout(() => c.end(reply), delayMs);
    });
  });
  t.teardown(() => {
    for (const c of sockets) c.destroy();
    s.close();
  });
  await new Promise<void>((resolve) => s.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { port: (s.address() as net.AddressInfo).port, requests };
}

void t.test('firstByte times connect() to the first byte of a correct reply', async (t) => {
  const srv = await server(t, OK, 150);
  const before = process.hrtime.bigint();
  const r = await firstByte(srv.port, 10_000);
  t.same(srv.requests, [COLD_REQUEST]);
  t.ok(r.ms >= 149, `waited for the delayed reply (${r.ms} ms)`);
  t.ok(r.ms < 5000, `not absurdly long (${r.ms} ms)`);
  t.ok(r.connectNs >= before && r.connectNs <= process.hrtime.bigint(), 'connectNs is a monotonic time from this run');
});

void t.test('firstByte rejects a reply that is not the 1 KiB page', async (t) => {
  const srv = await server(t, 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  await t.rejects(firstByte(srv.port, 10_000), { message: `127.0.0.1:${srv.port}: status 404, expected 200` });
});

void t.test('firstByte rejects when the server closes without a word', async (t) => {
  const srv = await server(t, '');
  await t.rejects(firstByte(srv.port, 10_000), { message: `127.0.0.1:${srv.port}: not an HTTP reply: ''` });
});

void t.test('firstByte gives up after its timeout', async (t) => {
  const srv = await server(t, null);
  await t.rejects(firstByte(srv.port, 300), { message: `no complete reply on 127.0.0.1:${srv.port} within 300 ms (0 bytes so far)` });
});

void t.test('firstByte rejects a refused connection', async (t) => {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  await t.rejects(firstByte(port, 10_000), { code: 'ECONNREFUSED' });
});
