import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  TCP_STATE,
  UNIX_FLAG_ACCEPTCON,
  formatIp,
  parseIp,
  parseProcNetTcp,
  parseProcNetUnix,
} from '../../../src/idle/proc-net.js';

// Real tables captured on this project's test machine (Linux 6.18, x86_64, little-endian) while Python
// listeners held connections open; they double as a fake /proc for readConnectionCount in
// kernel-connections.test.ts, which lists the expected counts. What they hold:
// - tcp: a listener on 127.0.0.1:34953 with one accepted connection whose client has closed (CLOSE_WAIT,
//   row 4) and two connections still in its accept queue (ESTABLISHED, inode 0, rows 3 and 8); row 5 is
//   the closed client's FIN_WAIT2 in the shorter timewait format; the last row is the IPv4 client of the
//   dual-stack listener below.
// - tcp6: a dual-stack listener on [::]:41169 with a queued IPv4 client (v4-mapped, row 2) and a queued
//   ::1 client (row 6); a listener on [::1]:45411 with one queued client (row 5); the client-side rows.
// - unix: a listener on /tmp/exp/app.sock with one accepted (St 03) and one queued (St 02, inode 0)
//   connection, an abstract listener '@podsock-fixture' with one queued connection, a bound datagram
//   socket (Type 0002), and an unbound socket.
const fixtures = new URL('./proc/net/', import.meta.url);
const TCP4 = readFileSync(new URL('tcp', fixtures), 'utf8');
const TCP6 = readFileSync(new URL('tcp6', fixtures), 'utf8');
const UNIX = readFileSync(new URL('unix', fixtures), 'utf8');

void t.test('parseProcNetTcp decodes IPv4 rows in host byte order', async (t) => {
  const rows = parseProcNetTcp(TCP4, false, true);
  t.equal(rows.length, 8, 'header skipped, all eight rows kept (timewait row included)');
  t.same(rows[0], {
    localAddress: '127.0.0.1',
    localPort: 34953,
    remoteAddress: '0.0.0.0',
    remotePort: 0,
    state: TCP_STATE.LISTEN,
    txQueue: 0,
    rxQueue: 2,
    uid: 0,
    inode: 16433,
  });
  t.same(rows[2], {
    localAddress: '127.0.0.1',
    localPort: 34953,
    remoteAddress: '127.0.0.1',
    remotePort: 0xe1d8,
    state: TCP_STATE.CLOSE_WAIT,
    txQueue: 0,
    rxQueue: 1,
    uid: 0,
    inode: 16437,
  });
  t.equal(rows[3]!.state, TCP_STATE.FIN_WAIT2);
  t.equal(rows[3]!.localPort, 0xe1d8);
  t.equal(rows[1]!.inode, 0, 'a queued connection has no inode yet');
});

void t.test('parseProcNetTcp honours the byte order of the kernel that wrote the text', async (t) => {
  const line = '   0: 7F000001:0050 0A000002:C350 01 00000000:00000000 00:00000000 00000000     0        0 7 1 0 20 0 0 10 -1';
  const [be] = parseProcNetTcp(line, false, false);
  t.equal(be!.localAddress, '127.0.0.1');
  t.equal(be!.remoteAddress, '10.0.0.2');
  t.equal(be!.localPort, 80);
  t.equal(be!.remotePort, 50000);
  const [le] = parseProcNetTcp(line, false, true);
  t.equal(le!.localAddress, '1.0.0.127');
});

void t.test('parseProcNetTcp decodes IPv6 rows, mapping ::ffff:a.b.c.d to a.b.c.d', async (t) => {
  const rows = parseProcNetTcp(TCP6, true, true);
  t.equal(rows.length, 7);
  t.same(
    rows.map((r) => [r.localAddress, r.localPort, r.remoteAddress, r.remotePort, r.state]),
    [
      ['::1', 45411, '::', 0, 10],
      ['::', 41169, '::', 0, 10],
      ['127.0.0.1', 41169, '127.0.0.1', 0xb284, 1],
      ['::1', 0xb230, '::1', 45411, 1],
      ['::1', 0xbbb8, '::1', 41169, 1],
      ['::1', 45411, '::1', 0xb230, 1],
      ['::1', 41169, '::1', 0xbbb8, 1],
    ],
  );
});

void t.test('parseProcNetTcp skips malformed lines and rows of the other family', async (t) => {
  const text = [
    'garbage',
    '',
    '   1: 0100007F:8889',
    '   2: 0100007F:88 0100007F:E1E8 01 00000000:00000000 00:00000000 00000000 0 0 0 1',
    '   3: 0100007G:8889 0100007F:E1E8 01 00000000:00000000 00:00000000 00000000 0 0 0 1',
    TCP4.split('\n')[2]!,
  ].join('\n');
  const rows = parseProcNetTcp(text, false, true);
  t.equal(rows.length, 1);
  t.equal(rows[0]!.remotePort, 0xe1e8);
  t.equal(parseProcNetTcp(TCP4, true, true).length, 0, 'IPv4 rows are not IPv6 rows');
  t.equal(parseProcNetTcp(TCP6, false, true).length, 0, 'IPv6 rows are not IPv4 rows');
});

void t.test('parseProcNetUnix reads flags, type, state, inode and path', async (t) => {
  const rows = parseProcNetUnix(UNIX);
  t.equal(rows.length, 7);
  t.same(rows[1], { refCount: 2, flags: UNIX_FLAG_ACCEPTCON, type: 1, state: 1, inode: 16483, path: '/tmp/exp/app.sock' });
  t.same(rows[2], { refCount: 3, flags: 0, type: 1, state: 2, inode: 0, path: '/tmp/exp/app.sock' });
  t.equal(rows[3]!.path, '@podsock-fixture');
  t.equal(rows[5]!.type, 2);
  t.equal(rows[6]!.path, undefined, 'an unbound socket has no path');
});

void t.test('parseProcNetUnix keeps spaces in paths and skips malformed lines', async (t) => {
  const text = [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '00000000c2998825: 00000003 00000000 00000000 0001 03 16486 /run/my app/a b.sock',
    'second half of a path with a newline',
    '00000000c2998825: 00000003 00000000 0001 03 16486 /missing/flags',
    '00000000c2998825: 00000003 00000000 00000000 0001 03 x /bad/inode',
  ].join('\n');
  const rows = parseProcNetUnix(text);
  t.equal(rows.length, 1);
  t.equal(rows[0]!.path, '/run/my app/a b.sock');
});

void t.test('formatIp and parseIp agree on canonical text', async (t) => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::', '::'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['fe80::1%lo', 'fe80::1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [input, expected] of cases) {
    const bytes = parseIp(input);
    t.not(bytes, undefined, input);
    t.equal(formatIp(bytes!), expected, input);
  }
  for (const bad of ['localhost', '', '1.2.3', '1.2.3.256', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', '::1.2.3']) {
    t.equal(parseIp(bad), undefined, `'${bad}' is not an IP literal`);
  }
});
