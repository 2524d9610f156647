// ProxyProtocol= on both TCP data paths, with real sockets: the backend (a test server) records every
// byte of each connection, and the PROXY protocol header must come first, exactly once per backend
// connection, with the client's address (a client bound to 127.0.0.2, so it cannot be podsock's) and
// the address it connected to.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ProxyProtocolVersion } from '../../../src/config/podsock-values.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { encodeV2 } from '../../../src/proxy/proxy-header.js';
import { Proxy, type PipeKind, type Target } from '../../../src/proxy/proxy.js';
import { backend } from '../../helpers/backend.js';
import { tmpDir } from '../../helpers/tmp-dir.js';
import { latePort } from '../late-port.js';

const PIPES: readonly PipeKind[] = ['native', 'js'];

function listener(t: Test, host: string, ipv6Only?: boolean): { fd: number; port: number } {
  const fd = listenSocket({ kind: 'tcp', host, port: 0, backlog: 64, ...(ipv6Only === undefined ? {} : { ipv6Only }) });
  t.teardown(() => closeFd(fd));
  return { fd, port: inspectFd(fd).port as number };
}

function makeProxy(t: Test, pipe: PipeKind, fd: number, version: ProxyProtocolVersion, over: { connectAttempts?: number; connectBackoffMs?: number } = {}): Proxy {
  const proxy = new Proxy({ listeners: [{ name: 'web', fd, proxyProtocol: version }], maxConnections: 100, maxPending: 100, pipe, connectBackoffMs: 10, ...over });
  t.teardown(() => proxy.destroy());
  return proxy;
}

/** A backend that keeps each connection's bytes until its EOF and answers 'ok'; `first` resolves with the first connection's bytes. */
async function recorder(t: Test, path?: string): Promise<{ target: Target; connections: Buffer[]; first: Promise<Buffer> }> {
  const connections: Buffer[] = [];
  let resolveFirst: (b: Buffer) => void = () => undefined;
  const first = new Promise<Buffer>((resolve) => (resolveFirst = resolve));
  const b = await backend(
    t,
    (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        const all = Buffer.concat(chunks);
        connections.push(all);
        if (connections.length === 1) resolveFirst(all);
        s.end('ok');
      });
    },
    path,
  );
  return { target: b.target, connections, first };
}

/** Connect from `localAddress`, send `data`, half-close and read the reply to its end. */
async function request(port: number, host: string, localAddress: string | undefined, data: string): Promise<{ localPort: number; reply: string }> {
  const s = connect({ port, host, ...(localAddress === undefined ? {} : { localAddress }) });
  await once(s, 'connect');
  const localPort = s.localPort as number;
  return { localPort, reply: await finish(s, data) };
}

function finish(s: Socket, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('error', reject);
    s.once('end', () => resolve(Buffer.concat(chunks).toString()));
    s.end(data);
  });
}

for (const pipe of PIPES) {
  void t.test(`${pipe}: v1 over IPv4, the header first and once, with the client's address`, async (t) => {
    const l = listener(t, '127.0.0.1');
    const rec = await recorder(t);
    const proxy = makeProxy(t, pipe, l.fd, 'v1');
    await proxy.start();
    proxy.setTargets(() => rec.target);
    const r = await request(l.port, '127.0.0.1', '127.0.0.2', 'GET / HTTP/1.0\r\n\r\n');
    t.equal(r.reply, 'ok');
    t.equal((await rec.first).toString('latin1'), `PROXY TCP4 127.0.0.2 127.0.0.1 ${r.localPort} ${l.port}\r\nGET / HTTP/1.0\r\n\r\n`);
  });

  void t.test(`${pipe}: v2 over IPv6`, async (t) => {
    const l = listener(t, '::1');
    const rec = await recorder(t);
    const proxy = makeProxy(t, pipe, l.fd, 'v2');
    await proxy.start();
    proxy.setTargets(() => rec.target);
    const r = await request(l.port, '::1', undefined, 'hello');
    const header = Buffer.from(
      '0d0a0d0a000d0a515549540a' + '21210024' + '00000000000000000000000000000001'.repeat(2) + r.localPort.toString(16).padStart(4, '0') + l.port.toString(16).padStart(4, '0'),
      'hex',
    );
    t.same(await rec.first, Buffer.concat([header, Buffer.from('hello')]));
  });

  void t.test(`${pipe}: an IPv4 client of a dual-stack listener is described as IPv4 (v1 and v2)`, async (t) => {
    const l = listener(t, '::', false);
    for (const version of ['v1', 'v2'] as const) {
      const rec = await recorder(t);
      const proxy = makeProxy(t, pipe, l.fd, version);
      await proxy.start();
      proxy.setTargets(() => rec.target);
      const r = await request(l.port, '127.0.0.1', '127.0.0.2', 'x');
      const got = await rec.first;
      if (version === 'v1') t.equal(got.toString('latin1'), `PROXY TCP4 127.0.0.2 127.0.0.1 ${r.localPort} ${l.port}\r\nx`);
      else t.same(got, Buffer.concat([encodeV2({ host: '127.0.0.2', port: r.localPort }, { host: '127.0.0.1', port: l.port }), Buffer.from('x')]));
      if (version === 'v2') t.equal(got.subarray(12, 14).toString('hex'), '2111', 'v2: PROXY, TCP over IPv4 (0x11)');
      proxy.destroy();
    }
  });

  // Without the header the backend never greets: the timeout makes that a failure rather than a hang.
  void t.test(`${pipe}: the header goes out when the client sends nothing (the server speaks first)`, { timeout: 20_000 }, async (t) => {
    const l = listener(t, '127.0.0.1');
    const expected = (port: number): string => `PROXY TCP4 127.0.0.2 127.0.0.1 ${port} ${l.port}\r\n`;
    let clientPort = 0;
    const got: Buffer[] = [];
    const b = await backend(t, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        // Greet once the header's line arrived: the client waits for the greeting before it ends.
        if (c.includes('\r\n')) s.write('220 hello\r\n');
      });
      s.on('end', () => {
        got.push(Buffer.concat(chunks));
        s.end();
      });
    });
    const proxy = makeProxy(t, pipe, l.fd, 'v1');
    await proxy.start();
    proxy.setTargets(() => b.target);
    const s = connect({ port: l.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await once(s, 'connect');
    clientPort = s.localPort as number;
    const [greeting] = (await once(s, 'data')) as [Buffer];
    t.equal(greeting.toString(), '220 hello\r\n', 'the backend had the header before the client sent a byte');
    await finish(s, '');
    t.equal(got.length, 1);
    t.equal(got[0]?.toString('latin1'), expected(clientPort), 'the header and nothing else');
  });

  void t.test(`${pipe}: a held connection connected again after its backend went away gets the header once on the new connection`, async (t) => {
    const l = listener(t, '127.0.0.1');
    const rec = await recorder(t);
    const proxy = makeProxy(t, pipe, l.fd, 'v2', { connectAttempts: 5, connectBackoffMs: 60_000 });
    await proxy.start();
    const s = connect({ port: l.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await once(s, 'connect');
    const clientPort = s.localPort as number;
    s.write('early ');
    if (proxy.activeCount === 0) await once(proxy, 'active');
    // The backend refuses (the container is still starting), then goes away and a new one comes.
    const refused = await latePort();
    proxy.setTargets(() => ({ host: '127.0.0.1', port: refused }));
    await new Promise((resolve) => setImmediate(resolve));
    proxy.unsetTargets();
    t.equal(proxy.heldCount, 1, 'held again');
    proxy.setTargets(() => rec.target);
    t.equal(await finish(s, 'late'), 'ok');
    const header = encodeV2({ host: '127.0.0.2', port: clientPort }, { host: '127.0.0.1', port: l.port });
    t.same(await rec.first, Buffer.concat([header, Buffer.from('early late')]), 'one header, then the bytes read while held, then the rest');
    t.equal(rec.connections.length, 1);
  });

  void t.test(`${pipe}: a connect retry sends the header on the connection that succeeds`, async (t) => {
    const l = listener(t, '127.0.0.1');
    const port = await latePort();
    const proxy = makeProxy(t, pipe, l.fd, 'v1', { connectAttempts: 50, connectBackoffMs: 20 });
    await proxy.start();
    proxy.setTargets(() => ({ host: '127.0.0.1', port }));
    const s = connect({ port: l.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await once(s, 'connect');
    const clientPort = s.localPort as number;
    // The first attempts are refused; the backend starts listening meanwhile (the assertion holds
    // whichever attempt succeeds).
    await new Promise((resolve) => setTimeout(resolve, 50));
    const connections: Buffer[] = [];
    const real = createServer({ allowHalfOpen: true }, (c) => {
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.on('end', () => {
        connections.push(Buffer.concat(chunks));
        c.end('ok');
      });
    });
    real.listen(port, '127.0.0.1');
    t.teardown(() => real.close());
    await once(real, 'listening');
    t.equal(await finish(s, 'body'), 'ok');
    t.same(connections.map((c) => c.toString('latin1')), [`PROXY TCP4 127.0.0.2 127.0.0.1 ${clientPort} ${l.port}\r\nbody`]);
  });

  void t.test(`${pipe}: unix clients: v1 UNKNOWN, v2 AF_UNIX with the listener's path`, async (t) => {
    const dir = tmpDir(t);
    const path = join(dir, 'web.sock');
    const fd = listenSocket({ kind: 'unix', path, backlog: 64 });
    t.teardown(() => closeFd(fd));
    for (const version of ['v1', 'v2'] as const) {
      const rec = await recorder(t);
      const proxy = makeProxy(t, pipe, fd, version);
      await proxy.start();
      proxy.setTargets(() => rec.target);
      const s = connect(path);
      await once(s, 'connect');
      t.equal(await finish(s, 'u'), 'ok');
      const expected = version === 'v1' ? Buffer.from('PROXY UNKNOWN\r\n') : encodeV2({ path: '' }, { path });
      t.same(await rec.first, Buffer.concat([expected, Buffer.from('u')]), version);
      proxy.destroy();
    }
  });

  void t.test(`${pipe}: off sends nothing but the client's bytes`, async (t) => {
    const l = listener(t, '127.0.0.1');
    const rec = await recorder(t);
    const proxy = makeProxy(t, pipe, l.fd, 'off');
    await proxy.start();
    proxy.setTargets(() => rec.target);
    await request(l.port, '127.0.0.1', '127.0.0.2', 'plain');
    t.equal((await rec.first).toString(), 'plain');
  });
}
