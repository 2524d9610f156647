import t from 'tap';
import { backendIndexFor, backendProtocols, isUdpListener } from '../../../src/proxy/socket-backends.js';
import type { ListenFd } from '../../../src/sd/listen-fds.js';

const tcp = (name: string, fd = 3): ListenFd => ({ fd, name, family: 'inet', type: 'stream', listening: true, host: '127.0.0.1', port: 53 });
const udp = (name: string, fd = 4): ListenFd => ({ fd, name, family: 'inet6', type: 'dgram', listening: false, host: '::', port: 53 });

void t.test('a socket is served by the backend of its name, else the unnamed one', async (t) => {
  const cfg = { backends: [{ name: 'dns', port: 53 }, { name: null, port: 80 }] };
  t.equal(backendIndexFor(cfg, 'dns'), 0);
  t.equal(backendIndexFor(cfg, 'web'), 1);
  t.equal(backendIndexFor({ backends: [{ name: 'a', port: 1 }] }, 'b'), 0);
});

void t.test('UDP sockets are IP datagram sockets only', async (t) => {
  t.ok(isUdpListener(udp('dns')));
  t.notOk(isUdpListener(tcp('dns')));
  t.notOk(isUdpListener({ type: 'dgram', family: 'unix' }));
});

void t.test('the protocols each backend is reached over follow its sockets', async (t) => {
  const cfg = { backends: [{ name: 'dns', port: 53 }, { name: 'web', port: 80 }, { name: 'spare', port: 81 }] };
  t.same(backendProtocols(cfg, [tcp('dns'), udp('dns', 4), tcp('web', 5)]), [
    { tcp: true, udp: true },
    { tcp: true, udp: false },
    { tcp: false, udp: false },
  ]);
});
