// Slow readers against the io_uring relay's pool of provided buffers (native/relay-uring.c): every
// connection receives into one pool shared by the thread. A send used
// to keep its buffer until the last byte was out, so clients that ask for a large reply and never read
// could pin every buffer and stall every other connection. The pattern that does it: the client sets a
// tiny SO_RCVBUF and a small TCP_MAXSEG before connecting (both are the client's to choose; a small MSS
// keeps the kernel from growing podsock's send buffer, which on loopback's 64 KiB MSS absorbs megabytes),
// asks for a reply larger than what the kernel then buffers, and never reads. Each such connection
// stalls with a send in flight after one or two 32 KiB receives, before the direction switches to
// splice(2). More of them than the pool has buffers must not keep a fresh connection from being served.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { Proxy } from '../../../src/proxy/proxy.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { relayEngine } from '../../../src/native/relay.js';
import { PYTHON } from '../../helpers/python.js';

/** More than the pool's 256 buffers (URING_BUFS). */
const SLOW_CLIENTS = 300;
/** Larger than what the kernel buffers for one such client, smaller than four full receives need to be sent. */
const REPLY_BYTES = 256 * 1024;

const SLOW = String.raw`
import socket, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET big\n")
    socks.append(s)
print("connected", flush=True)
sys.stdin.read()
`;

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const engine = relayEngine('auto');
const skip = engine.engine === 'io_uring' ? false : `the relay polls here (${engine.reason ?? 'unknown'}): no buffer pool to starve`;

void t.test('clients that never read do not starve the buffer pool: a fresh connection is served', { skip }, async (t) => {
  const reply = Buffer.alloc(REPLY_BYTES, 'r');
  let requests = 0;
  const sockets = new Set<Socket>();
  const backend = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('data', () => {
      requests++;
      s.write(reply);
    });
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    backend.close();
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const backendPort = (backend.address() as { port: number }).port;

  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 4096 });
  t.teardown(() => closeFd(fd));
  const port = inspectFd(fd).port as number;
  const proxy = new Proxy({ listeners: [{ name: 'l', fd }], maxConnections: 4096, maxPending: 4096, pipe: 'native' });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: backendPort }));

  const slow = spawn(PYTHON, ['-c', SLOW, String(SLOW_CLIENTS), String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => slow.kill('SIGKILL'));
  const [line] = (await once(slow.stdout, 'data')) as [Buffer];
  t.equal(line.toString().trim(), 'connected', `${SLOW_CLIENTS} slow clients connected and sent their request`);
  while (requests < SLOW_CLIENTS) await delay(20);
  // Let the relays move what they can until nothing changes any more (each has stalled or finished).
  let last = -1;
  for (let same = 0; same < 5; ) {
    await delay(100);
    const lent = relayEngine().lent;
    same = lent === last ? same + 1 : 0;
    last = lent;
  }
  t.comment(`with ${SLOW_CLIENTS} stalled readers: ${relayEngine().lent} provided buffers held, ${relayEngine().waiting} directions waiting for one`);
  t.ok(relayEngine().lent < 256, 'stalled sends do not hold the pool');

  // A fresh client: its request must reach the backend and the whole reply come back.
  const fresh = connect(port, '127.0.0.1');
  let got = 0;
  const served = new Promise<boolean>((resolve) => {
    fresh.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= REPLY_BYTES) resolve(true);
    });
    fresh.on('error', () => resolve(false));
    fresh.on('close', () => resolve(false));
  });
  fresh.write('GET big\n');
  const guard = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000).unref());
  t.ok(await Promise.race([served, guard]), `a fresh connection got its whole reply (${got} of ${REPLY_BYTES} bytes)`);
  fresh.destroy();
  slow.stdin.end();
});
