import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPodsockError } from '../../../src/errors.js';
import {
  closeFd,
  dupFd,
  inspectFd,
  listenSocket,
  nativeErrno,
  openDgram,
  setCloexec,
  unixAddressProblem,
  type ReceivedDatagram,
} from '../../../src/sd/native.js';
import { tmpDir as tmp } from '../../helpers/tmp-dir.js';
import { PYTHON } from '../../helpers/python.js';

const ADDON = resolve(fileURLToPath(import.meta.url), '../../../../build/Release/podsock_native.node');

/** A name nobody else on the machine uses (abstract names are per network namespace, not per process). */
function abstractName(tag: string): string {
  return `@podsock-test-${tag}-${process.pid}-${Math.random().toString(36).slice(2)}`;
}

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

function expectNativeError(t: Test, fn: () => unknown, errno: string, message: RegExp): void {
  try {
    fn();
    t.fail(`expected ${errno}`);
  } catch (err) {
    t.ok(isPodsockError(err, 'PODSOCK_ERR_NATIVE'), 'PODSOCK_ERR_NATIVE');
    t.equal(nativeErrno(err), errno);
    t.match((err as Error).message, message);
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

void t.test('dupFd: a close-on-exec copy at >= 3 of the same file; closeFd; setCloexec', async (t) => {
  const fd = openSync(join(tmp(t), 'f'), 'w');
  t.teardown(() => closeSync(fd));
  const copy = dupFd(fd);
  t.not(copy, fd);
  t.ok(copy >= 3);
  t.equal(fstatSync(copy).ino, fstatSync(fd).ino, 'same file');
  t.equal(fdFlags(copy) & O_CLOEXEC, O_CLOEXEC);
  setCloexec(copy, false);
  t.equal(fdFlags(copy) & O_CLOEXEC, 0);
  setCloexec(copy, true);
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

function receiveBatches(sock: ReturnType<typeof openDgram>): { batches: ReceivedDatagram[][]; next: () => Promise<ReceivedDatagram[]> } {
  const batches: ReceivedDatagram[][] = [];
  let waiter: ((b: ReceivedDatagram[]) => void) | null = null;
  sock.startReceiving((msgs) => {
    batches.push(msgs);
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(msgs);
    }
  });
  return {
    batches,
    next: () =>
      new Promise((r) => {
        waiter = r;
      }),
  };
}

void t.test('DgramSocket: send and receive with the sender credentials', async (t) => {
  const path = join(tmp(t), 'r.sock');
  const receiver = openDgram(path);
  t.teardown(() => receiver.close());
  const sender = openDgram(null);
  t.teardown(() => sender.close());
  const rx = receiveBatches(receiver);
  const got = rx.next();
  sender.send(path, Buffer.from('READY=1\nSTATUS=hi'));
  const [msg] = await got;
  t.same(msg, {
    data: Buffer.from('READY=1\nSTATUS=hi'),
    pid: process.pid,
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    truncated: false,
    fdCount: 0,
  });
});

void t.test('DgramSocket: credentials of a sender running as another user', { skip: process.getuid?.() === 0 ? false : 'needs root to switch users' }, async (t) => {
  const name = abstractName('uid');
  const receiver = openDgram(name);
  t.teardown(() => receiver.close());
  const rx = receiveBatches(receiver);
  const got = rx.next();
  const out = execFileSync(PYTHON, [
    '-c',
    'import os,socket,sys; os.setgid(65534); os.setuid(65534); s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.sendto(b"READY=1", b"\\0"+sys.argv[1].encode()); print(os.getpid())',
    name.slice(1),
  ]);
  const [msg] = await got;
  t.same(
    { pid: msg?.pid, uid: msg?.uid, gid: msg?.gid },
    { pid: Number(out.toString().trim()), uid: 65534, gid: 65534 },
  );
});

void t.test('DgramSocket: exactly 4096 bytes is whole, 4097 is truncated', async (t) => {
  const name = abstractName('size');
  const receiver = openDgram(name);
  t.teardown(() => receiver.close());
  const sender = openDgram(null);
  t.teardown(() => sender.close());
  const rx = receiveBatches(receiver);
  sender.send(name, Buffer.alloc(4096, 'a'));
  sender.send(name, Buffer.alloc(4097, 'b'));
  sender.send(name, Buffer.alloc(9000, 'c'));
  while (rx.batches.flat().length < 3) await rx.next();
  const msgs = rx.batches.flat();
  t.same(
    msgs.map((m) => [m.data.length, m.truncated]),
    [
      [4096, false],
      [4097, true],
      [4097, true],
    ],
  );
});

void t.test('DgramSocket: a full receiver queue is EAGAIN, never a blocked loop', async (t) => {
  const name = abstractName('full');
  const receiver = openDgram(name); // not receiving: the queue fills up
  t.teardown(() => receiver.close());
  const sender = openDgram(null);
  t.teardown(() => sender.close());
  let sent = 0;
  let error: unknown;
  for (; sent < 100000; sent++) {
    try {
      sender.send(name, Buffer.from('WATCHDOG=1'));
    } catch (err) {
      error = err;
      break;
    }
  }
  t.ok(sent > 0 && sent < 100000, `queue held ${sent} datagrams`);
  t.equal(nativeErrno(error), 'EAGAIN');
  t.match((error as Error).message, new RegExp(`^Failed to send datagram to '${name}': sendto: EAGAIN`));
});

void t.test('DgramSocket: errors for missing peers, bad addresses, closed sockets', async (t) => {
  const sender = openDgram(null);
  t.teardown(() => sender.close());
  const missing = join(tmp(t), 'nobody.sock');
  expectNativeError(t, () => sender.send(missing, Buffer.from('X=1')), 'ENOENT', /sendto: ENOENT/);
  expectNativeError(t, () => sender.send(`/${'p'.repeat(120)}`, Buffer.from('X=1')), 'EINVAL', /longer than the 107/);
  expectNativeError(t, () => sender.send('@', Buffer.from('X=1')), 'EINVAL', /empty/);
  const name = abstractName('dup');
  const a = openDgram(name);
  t.teardown(() => a.close());
  expectNativeError(t, () => openDgram(name), 'EADDRINUSE', /^Failed to bind datagram socket to '@podsock-test-dup-.*': bind: EADDRINUSE/);
  sender.close();
  sender.close(); // idempotent
  t.equal(sender.fd, -1);
  expectNativeError(t, () => sender.send(name, Buffer.from('X=1')), 'EBADF', /EBADF/);
  a.startReceiving(() => undefined);
  expectNativeError(t, () => a.startReceiving(() => undefined), 'EINVAL', /already receiving/);
});

void t.test('DgramSocket: close() from inside the batch callback', async (t) => {
  const name = abstractName('closein');
  const receiver = openDgram(name);
  t.teardown(() => receiver.close());
  const sender = openDgram(null);
  t.teardown(() => sender.close());
  const seen = await new Promise<number>((r) => {
    receiver.startReceiving((msgs) => {
      receiver.close();
      r(msgs.length);
    });
    for (let i = 0; i < 5; i++) sender.send(name, Buffer.from(`N=${i}`));
  });
  t.ok(seen >= 1, 'got a batch');
  t.equal(receiver.fd, -1);
  // A later datagram finds nobody bound.
  expectNativeError(t, () => sender.send(name, Buffer.from('N=9')), 'ECONNREFUSED', /ECONNREFUSED/);
});

void t.test('sockets that are never closed are collected without leaking fds or crashing', async (t) => {
  // Plain JS child loading the addon directly: allocate and drop many sockets, force GC, count fds.
  const script = `
    const native = require(${JSON.stringify(ADDON)});
    const fs = require('fs');
    const count = () => fs.readdirSync('/proc/self/fd').length;
    const before = count();
    for (let i = 0; i < 500; i++) native.dgramOpen(null);
    const during = count();
    setImmediate(() => {
      global.gc();
      setImmediate(() => {
        global.gc();
        setTimeout(() => { console.log(JSON.stringify({ before, during, after: count() })); }, 50);
      });
    });
  `;
  const out = await new Promise<string>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => child.kill('SIGKILL'));
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => (code === 0 ? resolvePromise(text) : reject(new Error(`exit ${code} ${signal}`))));
  });
  const { before, during, after } = JSON.parse(out) as { before: number; during: number; after: number };
  t.equal(during - before, 500, 'each socket holds an fd');
  t.ok(after - before < 50, `fds released by the finalizer (before ${before}, after ${after})`);
});

void t.test('an exception thrown by the batch callback is an uncaught exception, and receiving goes on', async (t) => {
  const script = `
    const native = require(${JSON.stringify(ADDON)});
    const name = '@podsock-test-exc-' + process.pid;
    const r = native.dgramOpen(name);
    const s = native.dgramOpen(null);
    const seen = [];
    process.on('uncaughtException', (e) => {
      seen.push('uncaught ' + e.message);
      native.dgramSend(s, name, Buffer.from('B=2'));
    });
    native.dgramStart(r, (msgs) => {
      seen.push(...msgs.map((m) => m.data.toString()));
      if (seen.length === 1) throw new Error('boom');
      native.dgramClose(r);
      native.dgramClose(s);
      console.log(JSON.stringify(seen));
    });
    native.dgramSend(s, name, Buffer.from('A=1'));
  `;
  const out = execFileSync(process.execPath, ['-e', script], { timeout: 30000 });
  t.same(JSON.parse(out.toString()), ['A=1', 'uncaught boom', 'B=2']);
});
