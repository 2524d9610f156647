// The expected headers are written out by hand from the spec
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, sections 2.1 and 2.2), not produced by
// the encoder: the 12-byte signature, version/command, family/transport, the big-endian length, then
// the addresses and ports in network byte order.
import t from 'tap';
import { encodeV1, encodeV2, V1_MAX_LENGTH } from '../../../src/proxy/proxy-header.js';

const SIG = '0d0a0d0a000d0a515549540a';
const hex = (b: Buffer): string => b.toString('hex');
const zeros = (n: number): string => '00'.repeat(n);

void t.test('v1: the spec examples', async (t) => {
  t.equal(encodeV1({ host: '192.168.0.1', port: 56324 }, { host: '192.168.0.11', port: 443 }).toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
  t.equal(encodeV1({ path: '' }, { path: '/run/app.sock' }).toString('latin1'), 'PROXY UNKNOWN\r\n', 'a unix client');
  t.equal(encodeV1(null, null).toString('latin1'), 'PROXY UNKNOWN\r\n', 'no address');
  const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const worst = encodeV1({ host: f, port: 65535 }, { host: f, port: 65535 });
  t.equal(worst.toString('latin1'), `PROXY TCP6 ${f} ${f} 65535 65535\r\n`);
  t.equal(worst.length, 104, "the spec's worst case is 104 bytes");
  t.ok(worst.length <= V1_MAX_LENGTH);
  t.equal(encodeV1({ host: '2001:db8::1', port: 12345 }, { host: '::1', port: 80 }).toString('latin1'), 'PROXY TCP6 2001:db8::1 ::1 12345 80\r\n');
});

void t.test('v1 and v2: an IPv4-mapped client is IPv4, both addresses in one family', async (t) => {
  const src = { host: '::ffff:10.0.0.2', port: 5000 };
  const dst = { host: '::ffff:10.0.0.1', port: 80 };
  t.equal(encodeV1(src, dst).toString('latin1'), 'PROXY TCP4 10.0.0.2 10.0.0.1 5000 80\r\n');
  t.equal(hex(encodeV2(src, dst)), `${SIG}2111000c` + '0a000002' + '0a000001' + '1388' + '0050');
  t.equal(encodeV1(src, { host: '10.0.0.1', port: 80 }).toString('latin1'), 'PROXY TCP4 10.0.0.2 10.0.0.1 5000 80\r\n', 'mapped with plain IPv4');
  // Mapped with a genuine IPv6 address: both IPv6.
  t.equal(encodeV1(src, { host: '2001:db8::2', port: 80 }).toString('latin1'), 'PROXY TCP6 ::ffff:10.0.0.2 2001:db8::2 5000 80\r\n');
  t.equal(
    hex(encodeV2({ host: '10.0.0.2', port: 5000 }, { host: '2001:db8::2', port: 80 })),
    `${SIG}21210024` + '00000000000000000000ffff0a000002' + '20010db8000000000000000000000002' + '1388' + '0050',
    'plain IPv4 with IPv6: the IPv4 one as ::ffff:a.b.c.d',
  );
});

void t.test('v2 TCP over IPv4: 0x21 0x11, length 12', async (t) => {
  t.equal(
    hex(encodeV2({ host: '192.168.0.1', port: 56324 }, { host: '192.168.0.11', port: 443 })),
    `${SIG}2111000c` + 'c0a80001' + 'c0a8000b' + 'dc04' + '01bb',
  );
});

void t.test('v2 TCP over IPv6: 0x21 0x21, length 36', async (t) => {
  t.equal(
    hex(encodeV2({ host: '2001:db8::1', port: 12345 }, { host: '::1', port: 80 })),
    `${SIG}21210024` + '20010db8000000000000000000000001' + '00000000000000000000000000000001' + '3039' + '0050',
  );
  t.equal(
    hex(encodeV2({ host: 'fe80::1%eth0', port: 1 }, { host: '1:2:3:4:5:6:7.8.9.10', port: 2 })),
    `${SIG}21210024` + 'fe800000000000000000000000000001' + '0001000200030004000500060708090a' + '0001' + '0002',
    'zone dropped; embedded IPv4 tail',
  );
});

void t.test('v2 UDP (dgram): 0x12 and 0x22', async (t) => {
  t.equal(
    hex(encodeV2({ host: '127.0.0.2', port: 53000 }, { host: '127.0.0.1', port: 53 }, { transport: 'dgram' })),
    `${SIG}2112000c` + '7f000002' + '7f000001' + 'cf08' + '0035',
  );
  t.equal(
    hex(encodeV2({ host: '::1', port: 53000 }, { host: '::1', port: 53 }, { transport: 'dgram' })),
    `${SIG}21220024` + '00000000000000000000000000000001'.repeat(2) + 'cf08' + '0035',
  );
});

void t.test('v2 unix stream: 0x31, 216 bytes of sun_path, abstract names with a leading NUL', async (t) => {
  // '/run/app.sock' = 2f 72 75 6e 2f 61 70 70 2e 73 6f 63 6b (13 bytes).
  t.equal(hex(encodeV2({ path: '' }, { path: '/run/app.sock' })), `${SIG}213100d8` + zeros(108) + '2f72756e2f6170702e736f636b' + zeros(95), 'an unnamed client');
  // '@podsock' = NUL 70 6f 64 73 6f 63 6b.
  t.equal(hex(encodeV2({ path: '@podsock' }, { path: '@podsock' }, { transport: 'dgram' })), `${SIG}213200d8` + ('00706f64736f636b' + zeros(100)).repeat(2));
  const full = '/' + 'a'.repeat(107);
  t.equal(encodeV2({ path: full }, { path: '' }).length, 16 + 216, 'a 108-byte path fills sun_path');
  t.throws(() => encodeV2({ path: full + 'b' }, { path: '' }), { code: 'PODSOCK_ERR_INTERNAL', message: /unix path .* at most 108 bytes/ });
});

void t.test('v2 LOCAL and UNSPEC carry no address', async (t) => {
  t.equal(hex(encodeV2(null, null, { local: true })), `${SIG}20000000`);
  t.equal(hex(encodeV2(null, { host: '127.0.0.1', port: 80 })), `${SIG}21000000`, 'PROXY with UNSPEC when an address is missing');
  t.equal(hex(encodeV2({ path: '' }, { host: '127.0.0.1', port: 80 })), `${SIG}21000000`, 'no family in common');
  t.throws(() => encodeV2({ host: '127.0.0.1', port: 1 }, null, { local: true }), { code: 'PODSOCK_ERR_INTERNAL' });
});

void t.test('bad input is an error naming it', async (t) => {
  t.throws(() => encodeV1({ host: 'localhost', port: 1 }, { host: '127.0.0.1', port: 1 }), { code: 'PODSOCK_ERR_INTERNAL', message: /host 'localhost'.*IPv4 or IPv6/ });
  t.throws(() => encodeV2({ host: '127.0.0.1', port: 70000 }, { host: '127.0.0.1', port: 1 }), { message: /port '?70000'?.*0 to 65535/ });
  t.throws(() => encodeV2(null, null, { transport: 'seq' as 'stream' }), { message: /transport 'seq'/ });
});
