import t from 'tap';
import { parseListenAddress } from '../../../src/listeners/listen-address.js';
import { caught } from '../../helpers/caught.js';

void t.test('stream forms', async (t) => {
  t.same(parseListenAddress('8080'), { name: 'listen', kind: 'tcp', host: '::', port: 8080, backlog: 4096 });
  t.same(parseListenAddress('web=localhost:80'), { name: 'web', kind: 'tcp', host: '127.0.0.1', port: 80, backlog: 4096 });
  t.same(parseListenAddress('/run/x.sock'), { name: 'listen', kind: 'unix', path: '/run/x.sock', backlog: 4096 });
});

void t.test('udp: forms make datagram sockets on the same addresses', async (t) => {
  t.same(parseListenAddress('udp:5353'), { name: 'listen', kind: 'udp', host: '::', port: 5353 });
  t.same(parseListenAddress('dns=udp:127.0.0.1:53'), { name: 'dns', kind: 'udp', host: '127.0.0.1', port: 53 });
  t.same(parseListenAddress('udp:[::1]:53'), { name: 'listen', kind: 'udp', host: '::1', port: 53 });
  t.same(parseListenAddress('udp:localhost:53'), { name: 'listen', kind: 'udp', host: '127.0.0.1', port: 53 });
});

void t.test('bad udp: values name the value and the forms', async (t) => {
  for (const [raw, why] of [
    ['udp:', 'no port'],
    ['udp:70000', 'port 70000 is out of range 1-65535'],
    ['udp:/run/x.sock', 'no port'],
    ['udp:[zz]:53', "'zz' is not an IPv6 address"],
  ] as const) {
    const err = caught(() => parseListenAddress(raw));
    t.equal(err.code, 'PODSOCK_ERR_USAGE', raw);
    t.match(err.message, `Invalid --listen '${raw}': ${why}`);
    t.match(err.message, "each IP form also as 'udp:…' for a datagram socket");
  }
});
