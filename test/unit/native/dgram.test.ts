// The addon's unix datagram sockets (src/native/dgram.ts): credentials, sizes, a full queue, errors,
// close from inside a callback, garbage collection.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { nativeErrno } from '../../../src/native/addon.js';
import { openDgram, type ReceivedDatagram } from '../../../src/native/dgram.js';
import { abstractName, ADDON, expectNativeError, PYTHON, tmp } from './helpers.js';

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
