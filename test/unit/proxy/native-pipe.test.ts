// The native relay behind proxy mode, as the proxy drives it (a client taken over from Node, then
// relayConnect() to the backend): what the take-over must preserve (bytes Node already read, an EOF it
// already saw, no FIN or RST on the way), reset propagation, abort, byte-exact bulk transfers on both
// the copy and the splice path, no fd left behind, and no handle keeping the process alive. The behaviour shared with the JS pipe is also covered by proxy.test.ts through Proxy.
// It runs on the io_uring engine where the kernel has one, and again on the poll engine
// (native-pipe-poll.test.ts sets PODSOCK_TEST_RELAY_ENGINE=poll).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { resetFd } from '../../../src/native/fds.js';
import { socketFd, takeOverSocket } from '../../../src/proxy/native-pipe.js';
import { RELAY_CONNECT_FAILED, RELAY_CONNECTED, relayConnect, relayEngine, type ConnectTarget, type Relay, type RelayOptions } from '../../../src/native/relay.js';
import { errorCodeAtClose, openFdCount, readToEnd } from '../../helpers/socket-end.js';
import { expectedRelayEngine } from './relay-engine.js';

const CHILD_ENV = 'PODSOCK_NATIVE_PIPE_TEST_CHILD';
const ENGINE_ENV = 'PODSOCK_TEST_RELAY_ENGINE';
const forcedPoll = process.env[ENGINE_ENV] === 'poll';
relayEngine(forcedPoll ? 'poll' : 'auto');

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A TCP server whose sockets are all destroyed at teardown; `handler` gets each connection. */
async function server(teardown: (fn: () => void) => void, handler: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    handler(s);
  });
  teardown(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return listen(srv);
}

interface Piped {
  handle: Relay;
  /** null for a clean finish or an abort, else the error that ended the relay or its connect. */
  done: Promise<NodeJS.ErrnoException | null>;
}

/**
 * A front that takes each accepted connection over from Node and relays it to the backend with
 * relayConnect(), as the proxy's native path does. `before(client)` may wait (e.g. until Node buffered
 * something) before the take-over.
 */
async function front(
  teardown: (fn: () => void) => void,
  backendPort: number | string,
  opts: RelayOptions = {},
  before: (client: Socket) => Promise<void> = async () => undefined,
): Promise<{ port: number; piped: Piped[]; next: () => Promise<Piped> }> {
  const piped: Piped[] = [];
  const waiters: Array<(p: Piped) => void> = [];
  let taken = 0;
  const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    client.on('error', () => undefined);
    const to: ConnectTarget = typeof backendPort === 'number' ? { port: backendPort, host: '127.0.0.1' } : { path: backendPort };
    void before(client).then(() => {
      let resolve!: (r: NodeJS.ErrnoException | null) => void;
      const done = new Promise<NodeJS.ErrnoException | null>((r) => (resolve = r));
      const side = takeOverSocket(client);
      const handle = relayConnect(side, to, (err, event) => {
        if (event === RELAY_CONNECT_FAILED) resetFd(side.fd);
        if (event !== RELAY_CONNECTED) resolve(err);
      }, { timeoutMs: 5000, ...opts });
      const p = { handle, done };
      piped.push(p);
      const waiter = waiters.shift();
      if (waiter) {
        taken++;
        waiter(p);
      }
    });
  });
  teardown(() => {
    for (const p of piped) p.handle.abort();
    srv.close();
  });
  const port = await listen(srv);
  // The connections piped so far, in order, one per call; waits for the next one when all were taken.
  const next = (): Promise<Piped> => {
    const p = piped[taken];
    if (p !== undefined) {
      taken++;
      return Promise.resolve(p);
    }
    return new Promise<Piped>((resolve) => waiters.push(resolve));
  };
  return { port, piped, next };
}

function client(port: number): Socket {
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  return c;
}

/** A deterministic, non-repeating-looking pattern, so a reordered or dropped chunk changes the hash. */
function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function childMain(): Promise<void> {
  // One relayed request/reply, then every server is closed: with no relay left the process must exit.
  const cleanups: Array<() => void> = [];
  const bport = await server((fn) => cleanups.push(fn), (s) => {
    s.on('end', () => s.end('bye'));
    s.resume();
  });
  const f = await front((fn) => cleanups.push(fn), bport);
  const c = client(f.port);
  const reply = readToEnd(c);
  c.end('hi');
  const got = (await reply).toString();
  c.end();
  const result = await (await f.next()).done;
  for (const fn of cleanups) fn();
  process.stdout.write(`${got} ${String(result)}\n`);
}

if (process.env[CHILD_ENV] === '1') {
  await childMain();
} else {
  const t = (await import('tap')).default;

  void t.test('relays run on the engine this kernel and this run call for', async (t) => {
    const want = forcedPoll ? 'poll' : expectedRelayEngine();
    const e = relayEngine();
    t.equal(e.engine, want, `engine (reason: ${e.reason ?? 'none'})`);
    if (want === 'poll') t.ok(e.reason, 'says why it polls');
    else t.equal(e.reason, null);
    const bport = await server(t.teardown.bind(t), (s) => {
      s.on('end', () => s.end('ok'));
      s.resume();
    });
    const f = await front(t.teardown.bind(t), bport);
    const c = client(f.port);
    const r = readToEnd(c);
    const p = await f.next();
    t.equal(p.handle.engine, want, "the relay's own engine");
    c.end('x');
    t.equal((await r).toString(), 'ok');
    t.equal(await p.done, null);
  });

  void t.test('bytes Node read and an EOF it saw before the take-over reach the backend first', async (t) => {
    let backendGot = '';
    const bport = await server(t.teardown.bind(t), (s) => {
      s.on('data', (d: Buffer) => (backendGot += d.toString()));
      s.on('end', () => s.end(`got ${backendGot.length}`));
    });
    // Wait until Node has the client's bytes and its EOF buffered (a held connection).
    const f = await front(t.teardown.bind(t), bport, {}, async (c) => {
      c.resume();
      c.pause();
      while (c.readableLength < 5 || !(c as unknown as { _readableState: { ended: boolean } })._readableState.ended) {
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    const c = client(f.port);
    const reply = readToEnd(c);
    c.end('hello');
    t.equal((await reply).toString(), 'got 5');
    t.equal(backendGot, 'hello');
    c.end();
    t.equal(await (await f.next()).done, null);
  });

  void t.test("a backend that speaks first: its banner reaches the client", async (t) => {
    const bport = await server(t.teardown.bind(t), (s) => {
      s.write('banner\n');
      s.on('end', () => s.end());
      s.resume();
    });
    const f = await front(t.teardown.bind(t), bport);
    const c = client(f.port);
    const reply = readToEnd(c);
    c.end();
    t.equal((await reply).toString(), 'banner\n');
    t.equal(await (await f.next()).done, null);
  });

  void t.test('the take-over sends neither FIN nor RST: the connection carries on both ways', async (t) => {
    const events: string[] = [];
    const bport = await server(t.teardown.bind(t), (s) => {
      s.on('data', (d: Buffer) => {
        events.push(`backend data ${d.toString()}`);
        s.write('pong');
      });
      s.on('end', () => {
        events.push('backend end');
        s.end();
      });
    });
    const f = await front(t.teardown.bind(t), bport);
    const c = client(f.port);
    c.on('end', () => events.push('client end'));
    const code = errorCodeAtClose(c);
    await once(c, 'connect');
    const p = await f.next();
    await new Promise((r) => setTimeout(r, 200)); // a FIN or RST from the take-over would have arrived
    t.same(events, [], 'nothing reached either peer');
    c.write('ping');
    const [d] = (await once(c, 'data')) as [Buffer];
    t.equal(d.toString(), 'pong');
    c.end();
    t.equal(await p.done, null);
    t.equal(await code, undefined);
    t.same(events, ['backend data ping', 'backend end', 'client end']);
  });

  void t.test('a backend reset resets the client; onDone reports ECONNRESET', async (t) => {
    const bport = await server(t.teardown.bind(t), (s) => {
      s.write('x');
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    const f = await front(t.teardown.bind(t), bport);
    const c = client(f.port);
    const code = errorCodeAtClose(c);
    t.equal(await code, 'ECONNRESET', 'the client sees a reset, not a clean EOF');
    const result = (await (await f.next()).done) as NodeJS.ErrnoException;
    t.equal(result?.code, 'ECONNRESET');
    t.match(result?.syscall, /^(recv|splice|send|shutdown)$/);
  });

  void t.test('a client reset resets the backend', async (t) => {
    let backendCode!: Promise<string | undefined>;
    const bport = await server(t.teardown.bind(t), (s) => {
      backendCode = errorCodeAtClose(s);
      s.write('x');
    });
    const f = await front(t.teardown.bind(t), bport);
    const c = client(f.port);
    c.on('error', () => undefined);
    await once(c, 'data');
    c.resetAndDestroy();
    t.equal(((await (await f.next()).done) as NodeJS.ErrnoException)?.code, 'ECONNRESET');
    t.equal(await backendCode, 'ECONNRESET');
  });

  void t.test('abort() resets both sides and reports null; a second abort is harmless', async (t) => {
    let backendCode!: Promise<string | undefined>;
    const bport = await server(t.teardown.bind(t), (s) => {
      backendCode = errorCodeAtClose(s);
      s.write('hello');
    });
    const f = await front(t.teardown.bind(t), bport);
    const c = client(f.port);
    const code = errorCodeAtClose(c);
    await once(c, 'data');
    const p = await f.next();
    p.handle.abort();
    p.handle.abort();
    t.equal(await p.done, null);
    t.equal(await code, 'ECONNRESET');
    t.equal(await backendCode, 'ECONNRESET');
    p.handle.abort();
    t.equal(p.handle.bufferedBytes, 0);
  });

  for (const [name, opts, splices] of [
    ['default (copy, then splice)', {}, true],
    ['copy only', { spliceAfter: -1 }, false],
    ['splice from the start', { spliceAfter: 0 }, true],
  ] as const) {
    void t.test(`64 MiB both ways at once is byte-exact: ${name}`, async (t) => {
      const size = 64 * 1024 * 1024;
      const up = pattern(size, 7);
      const down = pattern(size, 11);
      let backendHash!: Promise<string>;
      const bport = await server(t.teardown.bind(t), (s) => {
        backendHash = readToEnd(s).then(sha);
        s.end(down);
      });
      const f = await front(t.teardown.bind(t), bport, opts);
      const c = client(f.port);
      const received = readToEnd(c);
      c.end(up);
      const p = await f.next();
      let maxBuffered = 0;
      let spliced = false;
      // Sampled while it runs: a finished relay is freed at once and reports nothing any more.
      const sampler = setInterval(() => {
        maxBuffered = Math.max(maxBuffered, p.handle.bufferedBytes);
        spliced ||= p.handle.splicing;
      }, 1);
      t.teardown(() => clearInterval(sampler));
      t.equal(sha(await received), sha(down), 'backend to client');
      t.equal(await backendHash, sha(up), 'client to backend');
      t.equal(await p.done, null);
      clearInterval(sampler);
      t.ok(maxBuffered <= 2 * 1024 * 1024, `at most one pipe per direction held (saw ${maxBuffered})`);
      t.equal(spliced, splices, splices ? 'switched to splice' : 'never spliced');
      t.equal(p.handle.splicing, false, 'a finished relay reports nothing');
    });
  }

  void t.test('more stalled connections than the ring has buffers: none holds one, every byte arrives', async (t) => {
    // Every backend reads 512 KiB and then nothing until all have stalled, so every relay's
    // client-to-backend direction ends up with bytes its backend does not take. On the ring a send from
    // one of its 256 shared buffers is a single attempt: the rest moves into a buffer of the direction's
    // own and the shared one goes back at once, so 300 stalled relays hold none of them (a relay that
    // kept one would starve every other connection, pool-starvation.test.ts). Then the backends read on:
    // all byte-exact. Copy path only (spliceAfter -1): a splicing direction holds its pipe instead. The
    // backends are unix sockets: a unix stream sender has only its send buffer (net.core.wmem_default)
    // in flight, where TCP's autotuned buffers would take megabytes per connection first.
    const N = 300;
    const up = pattern(1024 * 1024, 3);
    let stalled = 0;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const hashes: Array<Promise<string>> = [];
    const dir = mkdtempSync(join(tmpdir(), 'podsock-relay-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'backend.sock');
    const sockets: Socket[] = [];
    const backends = createServer({ allowHalfOpen: true }, (s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      const h = createHash('sha256');
      let n = 0;
      hashes.push(new Promise((resolve) => s.once('end', () => resolve(h.digest('hex')))));
      s.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
        if (n >= 512 * 1024 && n - d.length < 512 * 1024) {
          s.pause();
          stalled++;
          void released.then(() => s.resume());
        }
      });
      s.once('end', () => s.end('done'));
    });
    backends.listen(path);
    await once(backends, 'listening');
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      backends.close();
    });
    const f = await front(t.teardown.bind(t), path, { spliceAfter: -1 });
    const clients = Array.from({ length: N }, () => client(f.port));
    const replies = clients.map((c) => readToEnd(c));
    for (const c of clients) c.end(up);
    const handles = await Promise.all(clients.map(() => f.next()));
    // Until every backend stalled and the bytes the relays hold stop changing.
    const polling = forcedPoll || expectedRelayEngine() === 'poll';
    let held = -1;
    for (let i = 0; i < 400; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const now = handles.reduce((n, p) => n + p.handle.bufferedBytes, 0);
      if (now === held && stalled === N) break;
      held = now;
    }
    t.equal(stalled, N, 'every backend stalled');
    const own = polling ? 64 * 1024 : 32 * 1024;
    t.ok(held <= N * own, `bounded: ${held} bytes held, at most one ${own / 1024} KiB buffer per relay`);
    if (!polling) {
      t.equal(relayEngine().lent, 0, "no stalled relay holds one of the ring's shared buffers");
      t.equal(relayEngine().waiting, 0, 'nobody waits for one');
    }
    release();
    const got = await Promise.all(replies);
    t.equal(got.filter((b) => b.toString() === 'done').length, N, 'every client got the reply');
    const want = sha(up);
    t.equal((await Promise.all(hashes)).filter((h) => h === want).length, N, 'every backend got every byte, in order');
    t.equal((await Promise.all(handles.map((p) => p.done))).filter((r) => r !== null).length, 0, 'every relay finished cleanly');
    t.equal(relayEngine().waiting, 0, 'nobody left waiting');
  });

  void t.test('fds are back to the baseline after 1000 relayed connections', async (t) => {
    const bport = await server(t.teardown.bind(t), (s) => {
      s.on('end', () => s.end('ok'));
      s.resume();
    });
    const f = await front(t.teardown.bind(t), bport);
    // Warm up once so lazily created fds (the event loop's, the addon's) are in the baseline.
    const warm = client(f.port);
    const warmed = readToEnd(warm);
    warm.end('x');
    await warmed;
    await Promise.all(f.piped.map((p) => p.done));
    const baseline = openFdCount();
    const total = 1000;
    const concurrency = 25;
    let next = 0;
    let failures = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++;
        const c = client(f.port);
        const closed = once(c, 'close');
        const r = readToEnd(c);
        c.end('x');
        if ((await r).toString() !== 'ok') failures++;
        c.end();
        await closed;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const results = await Promise.all(f.piped.map((p) => p.done));
    t.equal(failures, 0);
    t.equal(results.length, total + 1);
    t.equal(results.filter((r) => r !== null).length, 0, 'every relay finished cleanly');
    // The backend's server-side sockets close once the relay's FIN reached them; give them a moment.
    for (let i = 0; i < 100 && openFdCount() !== baseline; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(openFdCount(), baseline);
  });

  void t.test('the process exits by itself once no relay is active', async (t) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD_ENV]: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    t.teardown(() => clearTimeout(timer));
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    t.equal(signal, null, `exited by itself (stderr: ${err})`);
    t.equal(code, 0);
    t.equal(out, 'bye null\n');
  });

  void t.test('socketFd: the fd of a connected socket; a destroyed one has none', async (t) => {
    const bport = await server(t.teardown.bind(t), () => undefined);
    const c = client(bport);
    await once(c, 'connect');
    const fd = socketFd(c);
    t.ok(Number.isInteger(fd) && fd > 2, `fd ${fd}`);
    c.destroy();
    t.throws(() => socketFd(c), { code: 'PODSOCK_ERR_INTERNAL' });
  });
}
