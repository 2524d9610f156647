import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { isPodsockError } from '../../../src/errors.js';
import { linesContaining, countConnections, readConnectionCount, type WatchedSocket } from '../../../src/idle/kernel-connections.js';
import { closeFd, dupFd, listenSocket } from '../../../src/native/fds.js';
import { unixConnections } from '../../../src/native/sock-diag.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

// The captured tables described in proc-net.test.ts.
const procRoot = new URL('./proc', import.meta.url).pathname;
const tables = {
  tcp: readFileSync(join(procRoot, 'net/tcp'), 'utf8'),
  tcp6: readFileSync(join(procRoot, 'net/tcp6'), 'utf8'),
  unix: readFileSync(join(procRoot, 'net/unix'), 'utf8'),
};

void t.test('countConnections on captured tables', async (t) => {
  const cases: Array<[string, WatchedSocket[], number]> = [
    ['IPv4 listener: 2 queued + 1 CLOSE_WAIT', [{ kind: 'tcp', host: '127.0.0.1', port: 34953 }], 3],
    ['wildcard IPv4 address matches the loopback rows', [{ kind: 'tcp', host: '0.0.0.0', port: 34953 }], 3],
    ['another address on the same port', [{ kind: 'tcp', host: '10.0.0.1', port: 34953 }], 0],
    ['dual-stack listener: v4-mapped + ::1 client', [{ kind: 'tcp', host: '::', port: 41169 }], 2],
    ['::1 listener', [{ kind: 'tcp', host: '::1', port: 45411 }], 1],
    ['::1 spelled out', [{ kind: 'tcp', host: '0:0:0:0:0:0:0:1', port: 45411 }], 1],
    ['a port nothing listens on', [{ kind: 'tcp', host: '127.0.0.1', port: 80 }], 0],
    ['unix path: accepted + queued, not the listener', [{ kind: 'unix', path: '/tmp/exp/app.sock' }], 2],
    ['abstract name written with @', [{ kind: 'unix', path: '@podsock-fixture' }], 1],
    ['abstract name written with a NUL', [{ kind: 'unix', path: '\0podsock-fixture' }], 1],
    ['a bound datagram socket is not a connection', [{ kind: 'unix', path: '/tmp/exp/dgram.sock' }], 0],
    [
      'several sockets add up',
      [
        { kind: 'tcp', host: '127.0.0.1', port: 34953 },
        { kind: 'tcp', host: '::', port: 41169 },
        { kind: 'unix', path: '/tmp/exp/app.sock' },
      ],
      7,
    ],
    [
      'a row matching two watched sockets counts once',
      [
        { kind: 'tcp', host: '::', port: 41169 },
        { kind: 'tcp', host: '127.0.0.1', port: 41169 },
        { kind: 'unix', path: '/tmp/exp/app.sock' },
        { kind: 'unix', path: '/tmp/exp/app.sock' },
      ],
      4,
    ],
    ['nothing watched', [], 0],
  ];
  for (const [name, sockets, expected] of cases) t.equal(countConnections(sockets, tables), expected, name);
});

void t.test('countConnections ignores states after the application closed', async (t) => {
  const row = (st: string) =>
    `   1: 0100007F:1F90 0100007F:C350 ${st} 00000000:00000000 00:00000000 00000000     0        0 0 1 0 20 0 0 10 -1`;
  const watched: WatchedSocket[] = [{ kind: 'tcp', host: '127.0.0.1', port: 8080 }];
  const counted = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '0A', '0B'].filter(
    (st) => countConnections(watched, { tcp: row(st), tcp6: '', unix: '' }) === 1,
  );
  t.same(counted, ['01', '03', '08'], 'ESTABLISHED, SYN_RECV, CLOSE_WAIT');
});

void t.test('countConnections skips malformed lines', async (t) => {
  const tcp = `garbage\n${tables.tcp.split('\n').slice(0, 3).join('\n')}\n   9: 0100007F:8889 zz\n`;
  t.equal(countConnections([{ kind: 'tcp', host: '127.0.0.1', port: 34953 }], { tcp, tcp6: 'x', unix: '' }), 1);
});

void t.test('countConnections refuses a host that is not an IP literal or a bad port', async (t) => {
  for (const socket of [
    { kind: 'tcp', host: 'localhost', port: 80 },
    { kind: 'tcp', host: '127.0.0.1', port: 0 },
    { kind: 'tcp', host: '127.0.0.1', port: 65536 },
  ] as const) {
    t.throws(() => countConnections([socket], tables), { code: 'PODSOCK_ERR_BAD_SOCKET' });
  }
  let caught: unknown;
  try {
    countConnections([{ kind: 'tcp', host: 'localhost', port: 80 }], tables);
  } catch (err) {
    caught = err;
  }
  t.ok(isPodsockError(caught, 'PODSOCK_ERR_BAD_SOCKET'));
  t.equal((caught as Error).message, "Cannot count connections on 'localhost:80': expected an IP address and a port from 1 to 65535");
});

void t.test('readConnectionCount reads the tables under procRoot', async (t) => {
  t.equal(await readConnectionCount([{ kind: 'tcp', host: '::', port: 41169 }], procRoot), 2);
  t.equal(await readConnectionCount([{ kind: 'unix', path: '/tmp/exp/app.sock' }], procRoot), 2);
  const empty = tmpDir(t, 'podsock-proc-');
  t.equal(await readConnectionCount([{ kind: 'tcp', host: '::', port: 41169 }], empty), 0, 'missing tables are empty');
  t.equal(await readConnectionCount([], '/nonexistent'), 0, 'no sockets, no reads');
  await t.rejects(readConnectionCount([{ kind: 'unix', path: '/x' }], '/dev/null'), { code: 'PODSOCK_ERR_INTERNAL' });
});

// Live: a Python listener (listener.py) that accepts only when told to, so connections can sit in the
// kernel's accept queue the way they do before the container calls accept().
interface Listener {
  first: string;
  command(line: string): Promise<string>;
}

async function startListener(t: Test, kind: 'tcp' | 'tcp6' | 'unix' | 'fd', address: string, inherit?: number): Promise<Listener> {
  const child = spawn('python3', [new URL('./listener.py', import.meta.url).pathname, kind, kind === 'fd' ? '3' : address], {
    stdio: inherit === undefined ? ['pipe', 'pipe', 'inherit'] : ['pipe', 'pipe', 'inherit', inherit],
  }) as ChildProcessWithoutNullStreams;
  t.teardown(() => {
    child.kill();
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done === true) throw new Error(`listener.py ${kind} ${address} exited`);
    return value as string;
  };
  const first = await next();
  return {
    first,
    async command(line) {
      child.stdin.write(`${line}\n`);
      return next();
    },
  };
}

async function connect(t: Test, options: net.NetConnectOpts): Promise<net.Socket> {
  const socket = net.connect(options);
  t.teardown(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

// The kernel finishes a close asynchronously (FIN/ACK exchange on loopback); wait for the expected count
// with a generous deadline, then assert the exact value.
async function settledCount(count: () => Promise<number>, expected: number): Promise<number> {
  const deadline = Date.now() + 5000;
  let n = await count();
  while (n !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    n = await count();
  }
  return n;
}

// Clients from this process, or (connectOptions undefined) from the listener process itself.
async function lifecycle(
  t: Test,
  watched: WatchedSocket[],
  listener: Listener,
  connectOptions?: net.NetConnectOpts,
  readCount: () => Promise<number> = () => readConnectionCount(watched),
): Promise<void> {
  t.equal(await readCount(), 0, 'no connections yet');
  const clients: net.Socket[] = [];
  if (connectOptions === undefined) t.equal(await listener.command('connect 3'), 'connected 3');
  else for (let i = 0; i < 3; i++) clients.push(await connect(t, connectOptions));
  t.equal(await readCount(), 3, 'three connections waiting in the accept queue');
  t.equal(await listener.command('accept 2'), 'accepted 2');
  t.equal(await readCount(), 3, 'two accepted, one queued');
  if (connectOptions === undefined) t.equal(await listener.command('hangup'), 'hungup');
  for (const c of clients) c.destroy();
  t.equal(await settledCount(readCount, 3), 3, 'clients gone, the server has not closed: still busy');
  t.equal(await listener.command('close'), 'closed');
  t.equal(await listener.command('accept 1'), 'accepted 1');
  t.equal(await listener.command('close'), 'closed');
  t.equal(await settledCount(readCount, 0), 0, 'all closed');
}

void t.test('live IPv4 listener on 127.0.0.1', async (t) => {
  const listener = await startListener(t, 'tcp', '127.0.0.1');
  const port = Number(listener.first);
  await lifecycle(t, [{ kind: 'tcp', host: '127.0.0.1', port }], listener, { host: '127.0.0.1', port });
});

void t.test('live IPv6 listener on ::1', async (t) => {
  const listener = await startListener(t, 'tcp6', '::1');
  const port = Number(listener.first);
  await lifecycle(t, [{ kind: 'tcp', host: '::1', port }], listener, { host: '::1', port });
});

void t.test('live dual-stack listener on :: with IPv4 clients', async (t) => {
  const listener = await startListener(t, 'tcp6', '::');
  const port = Number(listener.first);
  await lifecycle(t, [{ kind: 'tcp', host: '::', port }], listener, { host: '127.0.0.1', port });
});

void t.test('live unix listener on a path', async (t) => {
  const dir = tmpDir(t, 'podsock-kc-');
  const path = join(dir, 'app.sock');
  const listener = await startListener(t, 'unix', path);
  t.equal(listener.first, 'ok');
  await lifecycle(t, [{ kind: 'unix', path }], listener, { path });
});

void t.test('live unix listener on an abstract name', async (t) => {
  const name = `podsock-kc-${process.pid}-${Date.now()}`;
  const listener = await startListener(t, 'unix', `@${name}`);
  t.equal(listener.first, 'ok');
  await lifecycle(t, [{ kind: 'unix', path: `\0${name}` }], listener);
});

// Handover mode counts unix listeners through sock_diag (countUnix), by the fd podsock holds: here the
// test holds the listener and the python process accepts from its inherited copy, like a container.
async function sockDiagLifecycle(t: Test, path: string, connectOptions?: net.NetConnectOpts): Promise<void> {
  const fd = listenSocket({ kind: 'unix', path, backlog: 64 });
  t.teardown(() => closeFd(fd));
  const listener = await startListener(t, 'fd', '', fd);
  t.equal(listener.first, 'ok');
  const watched: WatchedSocket[] = [{ kind: 'unix', path, fd }];
  await lifecycle(t, watched, listener, connectOptions, () => readConnectionCount(watched, '/nonexistent', unixConnections));
}

void t.test('sock_diag: live unix listener on a path', async (t) => {
  const dir = tmpDir(t, 'podsock-kc-');
  const path = join(dir, 'app.sock');
  await sockDiagLifecycle(t, path, { path });
});

void t.test('sock_diag: live unix listener on an abstract name', async (t) => {
  await sockDiagLifecycle(t, `@podsock-kc-${process.pid}-${Date.now()}`);
});

void t.test('sock_diag: two fds of one listener count its connections once; errors name the fd', async (t) => {
  const dir = tmpDir(t, 'podsock-kc-');
  const path = join(dir, 'app.sock');
  const fd = listenSocket({ kind: 'unix', path, backlog: 8 });
  t.teardown(() => closeFd(fd));
  const copy = dupFd(fd);
  t.teardown(() => closeFd(copy));
  await connect(t, { path });
  await connect(t, { path });
  t.equal(unixConnections([fd]), 2);
  t.equal(unixConnections([fd, copy]), 2);
  t.equal(unixConnections([]), 0);
  const tcp = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 8 });
  t.teardown(() => closeFd(tcp));
  t.throws(() => unixConnections([tcp]), { code: 'PODSOCK_ERR_NATIVE', details: { errno: 'ESRCH' } }, 'a TCP listener is not in the unix table');
  t.throws(() => unixConnections([0x7ffffff0]), { code: 'PODSOCK_ERR_NATIVE', details: { errno: 'EBADF' } });
});

void t.test('linesContaining keeps each line holding a needle once, in order, and nothing else', async (t) => {
  const text = ['  sl  local_address', '   0: 0100007F:1F90 00000000:0000 0A', '   1: 0100007F:D431 0100007F:1F90 01', '   2: 0100007F:0050 00000000:0000 0A', '   3: 0100007F:1F90 0100007F:1F90 01'].join('\n');
  t.equal(linesContaining(text, [':1F90 ']), ['   0: 0100007F:1F90 00000000:0000 0A', '   1: 0100007F:D431 0100007F:1F90 01', '   3: 0100007F:1F90 0100007F:1F90 01'].join('\n'));
  t.equal(linesContaining(text, [':0050 ', ':1F90 ']).split('\n').length, 4, 'a line matched by two needles once');
  t.equal(linesContaining(text, [':ABCD ']), '');
  t.equal(linesContaining(text, ['']), '', 'an empty needle matches nothing');
  t.equal(linesContaining('no newline at all /run/x.sock', ['/run/x.sock']), 'no newline at all /run/x.sock');
});
