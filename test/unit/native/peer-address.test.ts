// peerAddress(fd) (native/fd.c, getpeername(2)): the client address the PROXY protocol header carries.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { closeFd, listenSocket, peerAddress } from '../../../src/native/fds.js';
import { socketFd } from '../../../src/proxy/native-pipe.js';
import { expectNativeError, tmp } from './helpers.js';

/** A server set up by `listen`; resolves with the server side of one connection made by `dial`. */
async function accepted(t: Test, listen: (s: ReturnType<typeof createServer>) => void, dial: () => Socket): Promise<{ server: Socket; client: Socket }> {
  const srv = createServer();
  t.teardown(() => srv.close());
  listen(srv);
  await once(srv, 'listening');
  const client = dial();
  t.teardown(() => client.destroy());
  const [server] = (await once(srv, 'connection')) as [Socket];
  t.teardown(() => server.destroy());
  return { server, client };
}

void t.test('peerAddress: a TCP client bound to 127.0.0.2', async (t) => {
  let port = 0;
  const { server, client } = await accepted(
    t,
    (s) => s.listen(0, '127.0.0.1', () => (port = (s.address() as { port: number }).port)),
    () => connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }),
  );
  if (client.connecting) await once(client, 'connect');
  t.same(peerAddress(socketFd(server)), { host: '127.0.0.2', port: client.localPort });
});

void t.test('peerAddress: an IPv4 client of a dual-stack socket is ::ffff:a.b.c.d', async (t) => {
  let port = 0;
  const { server, client } = await accepted(
    t,
    (s) => s.listen({ port: 0, host: '::', ipv6Only: false }, () => (port = (s.address() as { port: number }).port)),
    () => connect({ port, host: '127.0.0.1' }),
  );
  if (client.connecting) await once(client, 'connect');
  t.same(peerAddress(socketFd(server)), { host: '::ffff:127.0.0.1', port: client.localPort });
});

void t.test('peerAddress: an unnamed unix client has path ""', async (t) => {
  const path = join(tmp(t), 'p.sock');
  const { server } = await accepted(
    t,
    (s) => s.listen(path),
    () => connect(path),
  );
  t.same(peerAddress(socketFd(server)), { path: '' });
});

void t.test('peerAddress: a listening socket has no peer (ENOTCONN)', async (t) => {
  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 1 });
  t.teardown(() => closeFd(fd));
  expectNativeError(t, () => peerAddress(fd), 'ENOTCONN', /getpeername/);
});
