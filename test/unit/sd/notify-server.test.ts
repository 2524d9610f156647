import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isPodsockError } from '../../../src/errors.js';
import { openDgram } from '../../../src/native/dgram.js';
import { NotifyServer, TokenBucket } from '../../../src/sd/notify-server.js';
import { gapMeter } from '../../helpers/loop-gap.js';
import { notifyServer as serve } from '../../helpers/notify.js';
import { python } from '../../helpers/python.js';
import { tmpDir as tmp } from '../../helpers/tmp-dir.js';

const SERVER_MODULE = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '../../../src/sd/notify-server.ts')).href;

void t.test('creates a private 0700 directory with a 0777 socket, removed on close', async (t) => {
  const parent = tmp(t);
  const server = await NotifyServer.create({ parentDir: parent, onMessage: () => undefined });
  t.teardown(() => server.close());
  t.equal(dirname(server.dir), parent);
  t.match(basename(server.dir), /^podsock-[A-Za-z0-9]{6}$/);
  t.equal(server.socketName, 'notify.sock');
  t.equal(server.socketPath, join(server.dir, 'notify.sock'));
  t.equal(statSync(server.dir).mode & 0o777, 0o700);
  const sock = lstatSync(server.socketPath);
  t.ok(sock.isSocket());
  t.equal(sock.mode & 0o777, 0o777);
  t.same(server.stats, { received: 0, delivered: 0, droppedTruncated: 0, droppedMalformed: 0, droppedRate: 0, fdsClosed: 0 });
  const other = await NotifyServer.create({ parentDir: parent, onMessage: () => undefined });
  t.teardown(() => other.close());
  t.not(other.dir, server.dir, 'a fresh directory each time');
  server.close();
  t.equal(existsSync(server.dir), false);
  server.close();
  other.close();
  t.same(readdirSync(parent), []);
});

void t.test('refuses a parent directory that makes the socket path too long, creating nothing', async (t) => {
  const parent = join(tmp(t), 'p'.repeat(80));
  try {
    await NotifyServer.create({ parentDir: parent, onMessage: () => undefined });
    t.fail('accepted');
  } catch (err) {
    t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY'));
    t.match((err as Error).message, /^Cannot create the notify socket in '.*p{80}': the path is \d+ bytes, longer than the 107 .*use a shorter runtime directory$/);
  }
  t.equal(existsSync(parent), false);
  try {
    await NotifyServer.create({ parentDir: join(tmp(t), 'missing'), onMessage: () => undefined });
    t.fail('accepted');
  } catch (err) {
    t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY'));
    t.match((err as Error).message, /^Failed to create the notify socket directory in '.*missing': ENOENT/);
  }
  try {
    await NotifyServer.create({ parentDir: tmp(t), maxPerSecond: 0, onMessage: () => undefined });
    t.fail('accepted');
  } catch (err) {
    t.ok(isPodsockError(err, 'PODSOCK_ERR_INTERNAL'));
    t.equal((err as Error).message, 'Expected the `maxPerSecond` option to be a number of at least 1, got `0` (number)');
  }
});

void t.test('a child process is attributed by its real pid', async (t) => {
  const { server, delivered } = await serve(t);
  const out = await python(
    t,
    'import os,socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.sendto(b"READY=1\\nSTATUS=from python",sys.argv[1])\nprint(os.getpid())',
    server.socketPath,
  );
  const [m] = await delivered(1);
  t.same(m, {
    pid: Number(out),
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    fields: [['READY', '1'], ['STATUS', 'from python']],
    fdCount: 0,
  });
  t.not(m?.pid, process.pid);
});

void t.test('fds passed with BARRIER=1 are closed: the sender sees POLLHUP', async (t) => {
  const { server, delivered } = await serve(t);
  // sd_notify_barrier(3): send the write end of a pipe, close our copy, wait for POLLHUP on the read end.
  const code = [
    'import os,select,socket,sys',
    'r,w=os.pipe()',
    's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
    's.connect(sys.argv[1])',
    'socket.send_fds(s,[b"BARRIER=1"],[w,w])',
    'os.close(w)',
    'p=select.poll(); p.register(r, select.POLLHUP)',
    'ev=p.poll(20000)',
    'print("hup" if ev and ev[0][1] & select.POLLHUP else "timeout")',
  ].join('\n');
  const out = await python(t, code, server.socketPath);
  t.equal(out, 'hup');
  const [m] = await delivered(1);
  t.same(m?.fields, [['BARRIER', '1']]);
  t.equal(m?.fdCount, 2);
  t.equal(server.stats.fdsClosed, 2);
});

void t.test('truncated and malformed datagrams are dropped and counted', async (t) => {
  const { server, drops, delivered } = await serve(t);
  const sender = openDgram(null);
  t.teardown(() => sender.close());
  const send = (b: Buffer): void => sender.send(server.socketPath, b);
  send(Buffer.alloc(5000, 'A'));
  send(Buffer.from(`STATUS=${'x'.repeat(4090)}`)); // 4097 bytes
  send(Buffer.from('READY=1\0STATUS=x'));
  send(Buffer.from([0x53, 0x54, 0x41, 0x54, 0x55, 0x53, 0x3d, 0xff, 0xfe]));
  send(Buffer.from('ready=1'));
  send(Buffer.from(`STATUS=${'y'.repeat(4089)}`)); // exactly 4096: fine
  send(Buffer.from('X_SENTINEL=1'));
  const msgs = await delivered(2);
  t.same(
    msgs.map((m) => m.fields[0]?.[0]),
    ['STATUS', 'X_SENTINEL'],
  );
  t.same(server.stats, { received: 7, delivered: 2, droppedTruncated: 2, droppedMalformed: 3, droppedRate: 0, fdsClosed: 0 });
  t.same(
    drops.map((d) => [d.reason, d.pid, d.detail]),
    [
      ['truncated', process.pid, 'datagram larger than 4096 bytes (or its control data was cut off)'],
      ['truncated', process.pid, 'datagram larger than 4096 bytes (or its control data was cut off)'],
      ['malformed', process.pid, 'the message contains a NUL byte at offset 7'],
      ['malformed', process.pid, 'the message is not valid UTF-8'],
      ['malformed', process.pid, "line 1 has an invalid key 'ready' (expected A-Z, 0-9 and _)"],
    ],
  );
});

void t.test('a flood is rate limited and the event loop stays responsive', async (t) => {
  const { server } = await serve(t); // defaults: 200/s, burst 400
  const total = 20000;
  const meter = gapMeter(t);
  const started = performance.now();
  const code = [
    'import socket,sys',
    's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
    `for i in range(${total}): s.sendto(b"WATCHDOG=1\\nX_N=%d" % i, sys.argv[1])`,
    'print("sent")',
  ].join('\n');
  t.equal(await python(t, code, server.socketPath), 'sent');
  // The sender blocks while our queue is full, so when it is done at most one queue's worth is left.
  while (server.stats.received < total) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  const maxGap = meter.stop();
  const ticks = meter.ticks();
  const s = server.stats;
  t.comment(`${total} datagrams in ${seconds.toFixed(2)} s; delivered ${s.delivered}, rate-dropped ${s.droppedRate}; ${ticks} ticks, max gap ${maxGap.toFixed(0)} ms`);
  t.equal(s.received, total);
  t.equal(s.delivered + s.droppedRate, total);
  t.ok(s.droppedRate > 0, 'some were dropped');
  t.ok(s.delivered >= 400, 'at least the burst was delivered');
  t.ok(s.delivered <= 400 + 200 * (seconds + 1), `delivered ${s.delivered} within burst + rate × ${seconds.toFixed(2)} s`);
  t.ok(ticks > 0, 'timers ran during the flood');
  t.ok(maxGap < 2000, `no long stall of the event loop (max gap ${maxGap.toFixed(0)} ms)`);
});

void t.test('TokenBucket: burst, then the rate', async (t) => {
  let now = 1000;
  const b = new TokenBucket(10, 3, () => now);
  t.same([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'burst of 3');
  now += 99;
  t.equal(b.take(), false, '0.99 token after 99 ms');
  now += 1;
  t.equal(b.take(), true, 'one token per 100 ms');
  t.equal(b.take(), false);
  now += 10_000;
  t.same([b.take(), b.take(), b.take(), b.take()], [true, true, true, false], 'refill is capped at the burst');
  now -= 5000; // a clock going backwards grants nothing
  t.equal(b.take(), false);
});

/** Run a small ESM child that uses NotifyServer; resolves with how it ended within `limitMs`. */
function child(t: Test, body: string, limitMs: number): Promise<'exited' | 'still running'> {
  const dir = tmp(t);
  const file = join(dir, 'child.mjs');
  writeFileSync(file, `import { NotifyServer } from ${JSON.stringify(SERVER_MODULE)};\n${body}\n`);
  // Only the TypeScript loader of this test process, so the child can import src/*.ts.
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  return new Promise((resolvePromise, reject) => {
    const c = spawn(process.execPath, [...loader, file, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    t.teardown(() => c.kill('SIGKILL'));
    const timer = setTimeout(() => resolvePromise('still running'), limitMs);
    c.once('error', reject);
    c.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise('exited');
      else reject(new Error(`child exit ${code}`));
    });
  });
}

void t.test('closing the server lets the process exit; an open one keeps it alive unless unref()d', async (t) => {
  const open = 'const s = await NotifyServer.create({ parentDir: process.argv[2], onMessage() {} });';
  const [closed, unrefd, referenced] = await Promise.all([
    child(t, `${open}\ns.close();`, 30000),
    child(t, `${open}\ns.unref();`, 30000),
    // Generous: it must outlive the other two (which had the same start-up cost) by far.
    child(t, `${open}\nsetTimeout(() => s.close(), 60000).unref();`, 12000),
  ]);
  t.equal(closed, 'exited', 'closed: exits by itself');
  t.equal(unrefd, 'exited', 'unref: exits by itself');
  t.equal(referenced, 'still running', 'open and referenced: keeps running');
});
