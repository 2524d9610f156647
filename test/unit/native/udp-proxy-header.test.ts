// The UDP engine's PROXY v2 header (native/proxy-v2.c) against the TypeScript encoder that TCP uses
// (src/proxy/proxy-header.ts), byte for byte, for IPv4 and IPv6; and the local address of a datagram
// that was already waiting in the socket when the engine opened it (as the one that starts a
// socket-activated service is): the kernel gives it an all-zero IP_PKTINFO, so the socket's own bound
// address stands in.
import { createSocket, type Socket } from 'node:dgram';
import t, { type Test } from 'tap';
import { bindUdpFd } from '../../helpers/udp.js';
import { udpProxyOpen } from '../../../src/native/udp-proxy.js';
import { encodeV2 } from '../../../src/proxy/proxy-header.js';

const LOOPBACK = { 4: '127.0.0.1', 6: '::1' } as const;

async function receiver(t: Test, family: 4 | 6): Promise<{ socket: Socket; port: number; got: Buffer[] }> {
  const socket = createSocket(family === 4 ? 'udp4' : 'udp6');
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK[family], resolve));
  t.teardown(() => socket.close());
  return { socket, port: socket.address().port, got };
}

for (const family of [4, 6] as const) {
  void t.test(`IPv${family}: the header of each datagram is the one encodeV2 makes, also for a datagram queued before the engine`, async (t) => {
    const { fd, port } = bindUdpFd(LOOPBACK[family]);
    const client = createSocket(family === 4 ? 'udp4' : 'udp6');
    t.teardown(() => client.close());
    await new Promise<void>((resolve) => client.bind(0, LOOPBACK[family], resolve));
    const clientPort = client.address().port;
    // Sent before the engine exists: it waits in the socket without IP_PKTINFO recorded.
    await new Promise<void>((resolve, reject) => client.send('early', port, LOOPBACK[family], (e) => (e ? reject(e) : resolve())));

    const backend = await receiver(t, family);
    const proxy = udpProxyOpen(fd, { proxyV2: true }, () => undefined);
    t.teardown(() => proxy.close());
    proxy.setTarget({ host: LOOPBACK[family], port: backend.port });
    client.send('late', port, LOOPBACK[family]);
    while (backend.got.length < 2) await new Promise((r) => setTimeout(r, 5));

    const header = encodeV2({ host: LOOPBACK[family], port: clientPort }, { host: LOOPBACK[family], port }, { transport: 'dgram' });
    for (const [i, payload] of ['early', 'late'].entries()) {
      const m = backend.got[i] as Buffer;
      t.same(m.subarray(0, header.length).toString('hex'), header.toString('hex'), `${payload}: the C header equals encodeV2's`);
      t.equal(m.subarray(header.length).toString(), payload, `${payload}: then the datagram, whole`);
    }
  });
}
