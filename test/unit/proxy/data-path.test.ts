// The contract between Proxy and a data path (data-path.ts), checked on both paths without a Proxy: a
// context that records what the path reports stands in for it. Accepted connections are admitted held
// with ids in order; a connected one reports piped, then finished when its pipe ends; one whose
// backend cannot be reached reports fail after the attempts; stopConnecting() keeps the client's bytes;
// abort() resets the client; the acceptor listens on a dup and closing it leaves systemd's socket intact.
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import type { PodsockError } from '../../../src/errors.js';
import type { Accepting, Connection, DataPath, ProxyContext } from '../../../src/proxy/data-path.js';
import { JsPath } from '../../../src/proxy/js-path.js';
import { NativePath } from '../../../src/proxy/native-path.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';

/** A ProxyContext without targets that records every report; admitted connections wait in `admitted`. */
function recorder(): ProxyContext & { log: string[]; admitted: Connection[]; nextAdmit(): Promise<Connection>; finished(n: number): Promise<void> } {
  let id = 1;
  const log: string[] = [];
  const admitted: Connection[] = [];
  let waiter: ((c: Connection) => void) | null = null;
  let finishes = 0;
  let finishWaiter: (() => void) | null = null;
  return {
    log,
    admitted,
    bufferBytes: 64 * 1024,
    connectTimeoutMs: 1000,
    connectAttempts: 2,
    connectBackoffMs: 5,
    backlog: 128,
    trackIdle: true,
    serving: () => false,
    nextId: () => id++,
    admit(conn) {
      log.push(`admit ${conn.id} ${conn.state}`);
      admitted.push(conn);
      waiter?.(conn);
    },
    piped(conn) {
      conn.state = 'piped';
      log.push(`piped ${conn.id}`);
    },
    fail(conn, err: PodsockError) {
      log.push(`fail ${conn.id} ${err.code}`);
      conn.abort(err);
      conn.state = 'done';
    },
    finish(conn) {
      if (conn.state === 'done') return;
      conn.state = 'done';
      log.push(`finish ${conn.id}`);
      finishes++;
      finishWaiter?.();
    },
    warn: (err) => log.push(`warn ${err.code}`),
    listenFailed: (err) => log.push(`listenFailed ${err.code}`),
    finished(n) {
      if (finishes >= n) return Promise.resolve();
      return new Promise((resolve) => {
        finishWaiter = () => {
          if (finishes < n) return;
          finishWaiter = null;
          resolve();
        };
      });
    },
    nextAdmit() {
      const c = admitted.shift();
      if (c) return Promise.resolve(c);
      return new Promise((resolve) => {
        waiter = (conn) => {
          waiter = null;
          admitted.shift();
          resolve(conn);
        };
      });
    },
  };
}

function listener(t: Test): { fd: number; port: number } {
  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 128 });
  t.teardown(() => closeFd(fd));
  return { fd, port: inspectFd(fd).port as number };
}

/** An echo backend on 127.0.0.1:0 that ends when its client does (every test ends its connections). */
async function echo(t: Test): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => s.on('error', () => undefined).pipe(s));
  t.teardown(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** Send `request`, half-close, collect the reply and how the connection ended. */
function exchange(port: number, request: string): { socket: Socket; done: Promise<{ reply: string; error: string | null }> } {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let error: string | null = null;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
  socket.end(request);
  const done = new Promise<{ reply: string; error: string | null }>((resolve) => socket.on('close', () => resolve({ reply: Buffer.concat(chunks).toString(), error })));
  return { socket, done };
}

async function accepting(t: Test, path: DataPath, fd: number): Promise<Accepting> {
  const a = path.accept({ name: 'web', fd });
  t.teardown(() => a.close());
  await a.listening();
  return a;
}

const paths: Array<[string, (ctx: ProxyContext) => DataPath]> = [
  ['native', (ctx) => new NativePath(ctx)],
  ['js', (ctx) => new JsPath(ctx)],
];

for (const [name, make] of paths) {
  void t.test(`${name}: admitted held with ids in order, then piped and finished; what was sent while held arrives`, async (t) => {
    const { fd, port } = listener(t);
    const bport = await echo(t);
    const ctx = recorder();
    await accepting(t, make(ctx), fd);
    const a = exchange(port, 'first');
    const b = exchange(port, 'second');
    const ca = await ctx.nextAdmit();
    const cb = await ctx.nextAdmit();
    t.same([ca.id, cb.id, ca.state, cb.state, ca.listener], [1, 2, 'held', 'held', 'web']);
    for (const c of [ca, cb]) {
      c.state = 'connecting';
      c.connect({ host: '127.0.0.1', port: bport });
    }
    t.same(await a.done, { reply: 'first', error: null });
    t.same(await b.done, { reply: 'second', error: null });
    await ctx.finished(2);
    t.same(ctx.log.filter((l) => !l.startsWith('admit')).sort(), ['finish 1', 'finish 2', 'piped 1', 'piped 2']);
    t.equal(ca.bufferedBytes(), 0);
  });

  void t.test(`${name}: an unreachable backend is reported by fail() after the attempts, and the client is reset`, async (t) => {
    const { fd, port } = listener(t);
    const ctx = recorder();
    await accepting(t, make(ctx), fd);
    const a = exchange(port, 'x');
    const c = await ctx.nextAdmit();
    // A port that was just free: nothing listens there.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const dead = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    c.state = 'connecting';
    c.connect({ host: '127.0.0.1', port: dead });
    const r = await a.done;
    t.equal(r.reply, '');
    t.ok(r.error === 'ECONNRESET' || r.error === null, `the client was closed (${String(r.error)})`);
    t.same(ctx.log, ['admit 1 held', 'fail 1 PODSOCK_ERR_BACKEND']);
  });

  void t.test(`${name}: stopConnecting() keeps what the client sent; connecting again delivers it`, async (t) => {
    const { fd, port } = listener(t);
    const bport = await echo(t);
    const ctx = recorder();
    await accepting(t, make(ctx), fd);
    const a = exchange(port, 'kept');
    const c = await ctx.nextAdmit();
    await new Promise((r) => setTimeout(r, 20)); // the request and its EOF reach podsock while held
    c.state = 'connecting';
    // A name: the native path looks it up first, so the attempt is still pending when stopped.
    c.connect({ host: 'localhost', port: bport });
    t.equal(c.stopConnecting(), true, 'stopped before it connected');
    c.state = 'held';
    c.state = 'connecting';
    c.connect({ host: '127.0.0.1', port: bport });
    t.same(await a.done, { reply: 'kept', error: null });
  });

  void t.test(`${name}: abort() resets a held client`, async (t) => {
    const { fd, port } = listener(t);
    const ctx = recorder();
    await accepting(t, make(ctx), fd);
    const a = exchange(port, 'x');
    const c = await ctx.nextAdmit();
    c.abort(new Error('test'));
    c.state = 'done';
    const r = await a.done;
    t.equal(r.reply, '');
    t.ok(r.error === 'ECONNRESET' || r.error === null, `closed (${String(r.error)})`);
  });

  void t.test(`${name}: accept() listens on a dup; close() leaves the passed socket listening`, async (t) => {
    const { fd } = listener(t);
    const ctx = recorder();
    const a = await accepting(t, make(ctx), fd);
    a.close();
    a.close();
    t.equal(inspectFd(fd).listening, true);
    t.same(ctx.log, []);
  });
}
