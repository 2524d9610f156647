// Rootless proxy mode's published port must be podsock's own (runtime/published-port.ts): the owner of
// the LISTEN row in /proc/net/tcp, from captured text and from the real table with a listener of
// another user (`nobody`, through setpriv) on the port.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import t from 'tap';
import { checkPublishedPorts, foreignListener, listenerUids } from '../../../src/runtime/published-port.js';

// Captured on a little-endian machine: 127.0.0.1:41000 (0xA028) listened on by uid 1000, 0.0.0.0:41001
// by uid 0, 127.0.0.1:41002 by two uids (SO_REUSEPORT is per uid, so a second one is another user's),
// an established connection to 41000 by uid 1001, and 10.0.0.5:41003.
const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:A028 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5001 1 0 100 0 0 10 0',
  '   1: 00000000:A029 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0 100 0 0 10 0',
  '   2: 0100007F:A02A 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5003 1 0 100 0 0 10 0',
  '   3: 0100007F:A02A 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 5004 1 0 100 0 0 10 0',
  '   4: 0100007F:D431 0100007F:A028 01 00000000:00000000 00:00000000 00000000  1001        0 5005 1 0 20 4 0 10 -1',
  '   5: 0500000A:A02B 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 5006 1 0 100 0 0 10 0',
  '',
].join('\n');

void t.test('listenerUids: the owners of the LISTEN rows on the address (or the wildcard) and port', async (t) => {
  t.same(listenerUids(TCP, '127.0.0.1', 41000), [1000], 'a connection to the port is not a listener');
  t.same(listenerUids(TCP, '127.0.0.1', 41001), [0], '0.0.0.0 takes 127.0.0.1 too');
  t.same(listenerUids(TCP, '127.0.0.1', 41002), [1000, 1001]);
  t.same(listenerUids(TCP, '127.0.0.1', 41003), [], 'another address');
  t.same(listenerUids(TCP, '127.0.0.1', 41009), []);
  t.same(listenerUids('', '127.0.0.1', 41000), []);
});

void t.test('foreignListener names what is wrong, or nothing', async (t) => {
  t.equal(foreignListener([1000], 1000, 41000, 8080), null);
  t.match(foreignListener([], 1000, 41000, 8080), /nothing listens on '127\.0\.0\.1:41000' for container port 8080 \(podman drops published ports with Network=none or host/);
  t.match(foreignListener([1001], 1000, 41000, 8080), /'127\.0\.0\.1:41000', published for container port 8080, is listened on by uid 1001, not by podsock's uid 1000: another local user took the port/);
  t.match(foreignListener([1000, 1001], 1000, 41000, 8080), /by uid 1001, not/);
});

// /proc/net/udp: 127.0.0.1:41000 bound by uid 1000 (unconnected, state 07), 127.0.0.1:41001 connected
// to 127.0.0.1:53 by uid 1000 (a client, not a published port), 127.0.0.1:41002 bound by uid 1001.
const UDP = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
  ' 1001: 0100007F:A028 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 6001 2 0000000000000000 0',
  ' 1002: 0100007F:A029 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1000        0 6002 2 0000000000000000 0',
  ' 1003: 0100007F:A02A 00000000:0000 07 00000000:00000000 00:00000000 00000000  1001        0 6003 2 0000000000000000 0',
  '',
].join('\n');

void t.test('listenerUids for UDP: the owners of the unconnected sockets bound to the port', async (t) => {
  t.same(listenerUids(UDP, '127.0.0.1', 41000, 'udp'), [1000]);
  t.same(listenerUids(UDP, '127.0.0.1', 41001, 'udp'), [], 'a connected socket is nobody\'s published port');
  t.same(listenerUids(UDP, '127.0.0.1', 41002, 'udp'), [1001]);
  t.same(listenerUids(TCP, '127.0.0.1', 41000, 'udp'), [], 'a TCP LISTEN row is no UDP socket');
  t.match(foreignListener([1001], 1000, 41002, 53, 'udp'), /^'127\.0\.0\.1:41002\/udp', published for container port 53, is listened on by uid 1001/);
});

void t.test('checkPublishedPorts reads /proc/net/udp for UDP ports, once', async (t) => {
  const reads: string[] = [];
  const read = (protocol: 'tcp' | 'udp'): string => {
    reads.push(protocol);
    return protocol === 'tcp' ? TCP : UDP;
  };
  checkPublishedPorts(
    [
      { hostPort: 41000, containerPort: 53 },
      { hostPort: 41000, containerPort: 53, protocol: 'udp' },
    ],
    1000,
    'podsock-dns',
    read,
  );
  t.same(reads, ['tcp', 'udp']);
  t.throws(() => checkPublishedPorts([{ hostPort: 41002, containerPort: 53, protocol: 'udp' }], 1000, 'podsock-dns', read), {
    code: 'PODSOCK_ERR_BACKEND',
    message: /'127\.0\.0\.1:41002\/udp', published for container port 53, is listened on by uid 1001/,
  });
  t.throws(() => checkPublishedPorts([{ hostPort: 41009, containerPort: 53, protocol: 'udp' }], 1000, 'podsock-dns', read), { message: /nothing listens on '127\.0\.0\.1:41009\/udp'/ });
});

void t.test('checkPublishedPorts checks every port, with one read of the table', async (t) => {
  let reads = 0;
  const read = (): string => {
    reads++;
    return TCP;
  };
  checkPublishedPorts([{ hostPort: 41000, containerPort: 8080 }], 1000, 'podsock-web', read);
  checkPublishedPorts([], 1000, 'podsock-web', read);
  t.equal(reads, 1, 'nothing published: nothing read');
  t.throws(() => checkPublishedPorts([{ hostPort: 41000, containerPort: 8080 }, { hostPort: 41002, containerPort: 9090 }], 1000, 'podsock-web', read), {
    code: 'PODSOCK_ERR_BACKEND',
    message: /^Refusing to proxy to container 'podsock-web': '127\.0\.0\.1:41002', published for container port 9090, is listened on by uid 1001/,
  });
});

void t.test('the real table: this process\'s listener passes, one of user nobody does not', { skip: process.getuid?.() === 0 ? false : 'needs root (setpriv)' }, async (t) => {
  const own = createServer();
  own.listen(0, '127.0.0.1');
  await once(own, 'listening');
  t.teardown(() => own.close());
  const ownPort = (own.address() as AddressInfo).port;
  checkPublishedPorts([{ hostPort: ownPort, containerPort: 8080 }], 0, 'podsock-web');
  t.pass('own listener accepted');

  const script = "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))";
  const other = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  t.teardown(() => other.kill('SIGKILL'));
  const [line] = (await once(other.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  t.throws(() => checkPublishedPorts([{ hostPort: port, containerPort: 8080 }], 0, 'podsock-web'), {
    code: 'PODSOCK_ERR_BACKEND',
    message: new RegExp(`'127\\.0\\.0\\.1:${port}', published for container port 8080, is listened on by uid 65534, not by podsock's uid 0`),
  });
});
