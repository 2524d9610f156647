// The addon's raw fds and listening sockets (src/native/fds.ts): inspect, dup, close, listen, and the
// unix address limits.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { closeFd, dupFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { openDgram } from '../../../src/native/dgram.js';
import { unixAddressProblem } from '../../../src/native/unix-address.js';
import { abstractName, expectNativeError, PYTHON, tmp } from './helpers.js';

function listen(t: Test, spec: Parameters<typeof listenSocket>[0]): number {
  const fd = listenSocket(spec);
  t.teardown(() => closeFd(fd));
  return fd;
}

function connected(t: Test, options: { port: number; host: string } | { path: string }): Promise<Socket> {
  return new Promise((resolvePromise, reject) => {
    const s = 'path' in options ? connect(options.path) : connect(options.port, options.host);
    t.teardown(() => s.destroy());
    s.once('connect', () => resolvePromise(s));
    s.once('error', reject);
  });
}

/** The fd flags from /proc (octal), e.g. to see O_CLOEXEC (02000000). */
function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return parseInt(m?.[1] ?? 'x', 8);
}
const O_CLOEXEC = 0o2000000;

function hasIpv6Loopback(): boolean {
  try {
    const fd = listenSocket({ kind: 'tcp', host: '::1', port: 0, backlog: 1 });
    closeFd(fd);
    return true;
  } catch {
    return false;
  }
}

void t.test('inspectFd: TCP IPv4 listener on port 0 reports the real port', async (t) => {
  const fd = listen(t, { kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  const info = inspectFd(fd);
  t.equal(info.fd, fd);
  t.equal(info.family, 'inet');
  t.equal(info.type, 'stream');
  t.equal(info.listening, true);
  t.equal(info.host, '127.0.0.1');
  t.ok(typeof info.port === 'number' && info.port > 0 && info.port < 65536, 'a real port');
  t.equal(info.path, undefined);
  // It really listens: the kernel completes the handshake into the backlog without anyone accepting.
  const client = await connected(t, { host: '127.0.0.1', port: info.port as number });
  t.equal(client.remotePort, info.port);
  t.equal(fdFlags(fd) & O_CLOEXEC, O_CLOEXEC, 'close-on-exec');
  t.equal(fdFlags(fd) & 0o4000, 0, 'blocking (no O_NONBLOCK)');
});

void t.test('inspectFd: TCP IPv6 listener', { skip: hasIpv6Loopback() ? false : 'no IPv6 loopback here' }, async (t) => {
  const fd = listen(t, { kind: 'tcp', host: '::1', port: 0, backlog: 16, ipv6Only: true });
  const info = inspectFd(fd);
  t.same(
    { family: info.family, type: info.type, listening: info.listening, host: info.host },
    { family: 'inet6', type: 'stream', listening: true, host: '::1' },
  );
  const client = await connected(t, { host: '::1', port: info.port as number });
  t.equal(client.remoteAddress, '::1');
});

void t.test('listenSocket: "::" with ipv6Only false accepts IPv4 too', async (t) => {
  let fd: number;
  try {
    fd = listen(t, { kind: 'tcp', host: '::', port: 0, backlog: 16, ipv6Only: false });
  } catch (err) {
    t.pass(`no IPv6 here, nothing to check: ${(err as Error).message}`);
    return;
  }
  const info = inspectFd(fd);
  t.equal(info.family, 'inet6');
  t.equal(info.host, '::');
  const client = await connected(t, { host: '127.0.0.1', port: info.port as number });
  t.equal(client.remotePort, info.port);
});

void t.test('inspectFd: unix listener on a path', async (t) => {
  const path = join(tmp(t), 'l.sock');
  const fd = listen(t, { kind: 'unix', path, backlog: 16 });
  t.same(inspectFd(fd), { fd, family: 'unix', type: 'stream', listening: true, path });
  await connected(t, { path });
});

void t.test('inspectFd: abstract unix listener is reported as @name', async (t) => {
  const name = abstractName('listen');
  const fd = listen(t, { kind: 'unix', path: name, backlog: 16 });
  t.same(inspectFd(fd), { fd, family: 'unix', type: 'stream', listening: true, path: name });
  // Connect with the exact name length (Node's net pads abstract names with NULs to sizeof(sun_path)).
  const out = execFileSync(PYTHON, [
    '-c',
    'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(b"\\0"+sys.argv[1].encode()); print("connected")',
    name.slice(1),
  ]);
  t.equal(out.toString().trim(), 'connected');
});

void t.test('inspectFd: a connected TCP socket is not listening', async (t) => {
  const lfd = listen(t, { kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  const port = inspectFd(lfd).port as number;
  const client = await connected(t, { host: '127.0.0.1', port });
  const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  const info = inspectFd(fd);
  t.same(info, { fd, family: 'inet', type: 'stream', listening: false, host: '127.0.0.1', port: client.localPort });
});

void t.test('inspectFd: a UDP socket is dgram and not listening', async (t) => {
  const udp = createSocket('udp4');
  t.teardown(() => udp.close());
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const fd = (udp as unknown as { _handle: { fd: number } })._handle.fd;
  t.same(inspectFd(fd), { fd, family: 'inet', type: 'dgram', listening: false, host: '127.0.0.1', port: udp.address().port });
});

void t.test('inspectFd: unix datagram sockets, bound (abstract) and unnamed', async (t) => {
  const name = abstractName('dg');
  const bound = openDgram(name);
  t.teardown(() => bound.close());
  t.same(inspectFd(bound.fd), { fd: bound.fd, family: 'unix', type: 'dgram', listening: false, path: name });
  const unbound = openDgram(null);
  t.teardown(() => unbound.close());
  t.same(inspectFd(unbound.fd), { fd: unbound.fd, family: 'unix', type: 'dgram', listening: false, path: '' });
});

void t.test('inspectFd: a pipe (FIFO) and a regular file are "other"', async (t) => {
  const dir = tmp(t);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const pipeFd = openSync(fifo, 'r+'); // O_RDWR: opening does not wait for a writer
  t.teardown(() => closeSync(pipeFd));
  t.same(inspectFd(pipeFd), { fd: pipeFd, family: 'other', type: 'other', listening: false });
  const fileFd = openSync(join(dir, 'file'), 'w');
  t.teardown(() => closeSync(fileFd));
  t.same(inspectFd(fileFd), { fd: fileFd, family: 'other', type: 'other', listening: false });
});

void t.test('inspectFd: a closed fd throws EBADF naming the fd', async (t) => {
  const fd = openSync(join(tmp(t), 'f'), 'w');
  closeFd(fd);
  expectNativeError(t, () => inspectFd(fd), 'EBADF', new RegExp(`^Failed to inspect fd '${fd}': .*EBADF`));
});

void t.test('dupFd: a close-on-exec copy at >= 3 of the same file; closeFd', async (t) => {
  const fd = openSync(join(tmp(t), 'f'), 'w');
  t.teardown(() => closeSync(fd));
  const copy = dupFd(fd);
  t.not(copy, fd);
  t.ok(copy >= 3);
  t.equal(fstatSync(copy).ino, fstatSync(fd).ino, 'same file');
  t.equal(fdFlags(copy) & O_CLOEXEC, O_CLOEXEC);
  closeFd(copy);
  expectNativeError(t, () => closeFd(copy), 'EBADF', /^Failed to close fd '\d+': close: EBADF/);
  expectNativeError(t, () => dupFd(copy), 'EBADF', /EBADF/);
  expectNativeError(t, () => dupFd(-1), 'EINVAL', /non-negative integer/);
  expectNativeError(t, () => dupFd(1.5), 'EINVAL', /non-negative integer/);
});

void t.test('listenSocket errors name the address and the errno', async (t) => {
  const fd = listen(t, { kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  const port = inspectFd(fd).port as number;
  expectNativeError(
    t,
    () => listenSocket({ kind: 'tcp', host: '127.0.0.1', port, backlog: 16 }),
    'EADDRINUSE',
    new RegExp(`^Failed to listen on TCP address '127\\.0\\.0\\.1:${port}': bind: EADDRINUSE`),
  );
  expectNativeError(
    t,
    () => listenSocket({ kind: 'tcp', host: 'localhost', port: 80, backlog: 16 }),
    'EINVAL',
    /^Failed to listen on TCP address 'localhost:80': 'localhost' is not an IPv4 or IPv6 address$/,
  );
  expectNativeError(t, () => listenSocket({ kind: 'tcp', host: '::1', port: 70000, backlog: 1 }), 'EINVAL', /\[::1\]:70000/);
  const long = `/tmp/${'x'.repeat(103)}`; // 108 bytes: no room for the NUL
  expectNativeError(t, () => listenSocket({ kind: 'unix', path: long, backlog: 1 }), 'EINVAL', /108 bytes, longer than the 107/);
  expectNativeError(
    t,
    () => listenSocket({ kind: 'unix', path: join(tmp(t), 'missing', 's.sock'), backlog: 1 }),
    'ENOENT',
    /^Failed to listen on unix socket '.*s\.sock': bind: ENOENT/,
  );
});

void t.test('unixAddressProblem: limits of sun_path', async (t) => {
  t.equal(unixAddressProblem(`/${'a'.repeat(106)}`), undefined, '107 bytes fit');
  t.match(unixAddressProblem(`/${'a'.repeat(107)}`), /108 bytes/);
  t.equal(unixAddressProblem(`@${'a'.repeat(107)}`), undefined, 'abstract: 107 name bytes fit');
  t.match(unixAddressProblem(`@${'a'.repeat(108)}`), /abstract name is 108 bytes/);
  t.match(unixAddressProblem('@'), /empty/);
  t.match(unixAddressProblem(''), /empty/);
  t.match(unixAddressProblem('/a\0b'), /NUL/);
});

void t.test('listenSocket udp: a bound datagram socket, and a clear error for a port in use or a bad host', async (t) => {
  const fd = listenSocket({ kind: 'udp', host: '127.0.0.1', port: 0 });
  t.teardown(() => closeFd(fd));
  const info = inspectFd(fd);
  t.match(info, { family: 'inet', type: 'dgram', listening: false, host: '127.0.0.1' });
  const port = info.port as number;
  expectNativeError(t, () => listenSocket({ kind: 'udp', host: '127.0.0.1', port }), 'EADDRINUSE', new RegExp(`^Failed to bind UDP address '127\\.0\\.0\\.1:${port}': bind: EADDRINUSE`));
  t.throws(() => listenSocket({ kind: 'udp', host: 'localhost', port: 53 }), /'localhost' is not an IPv4 or IPv6 address/);
});
