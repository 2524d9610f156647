// Running out of fds (EMFILE) in the UDP proxy engine (native/udp-proxy-io.c): a datagram whose flow
// cannot be opened (no fd for its upstream socket) is lost alone and counted as failed, the drop event
// says so, the engine keeps serving, and once an fd is free the next datagram of that client opens its
// flow and is answered. The engine runs in a child process whose fd limit is lowered with prlimit(1)
// and whose remaining fds are then filled with /dev/null; the client and the backend live in this
// process, so only the engine hits the limit.
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';

const CHILD_ENV = 'PODSOCK_UDP_EMFILE_TEST_CHILD';
/** fds the child may open beyond what it has once the engine is up (all filled with /dev/null). */
const HEADROOM = 16;

/** The child: an engine on 127.0.0.1, driven by lines on stdin, answering on stdout. */
async function childMain(): Promise<void> {
  const { udpProxyOpen } = await import('../../../src/native/udp-proxy.js');
  const { inspectFd, listenSocket } = await import('../../../src/native/fds.js');
  const fd = listenSocket({ kind: 'udp', host: '127.0.0.1', port: 0 });
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const proxy = udpProxyOpen(fd, {}, (ev) => say(`event ${JSON.stringify(ev)}`));
  proxy.setTarget({ host: '127.0.0.1', port: Number(process.env.BACKEND_PORT) });
  const fillers: number[] = [];
  const commands: Record<string, () => void> = {
    // Take every fd the (lowered) limit leaves.
    fill: () => {
      for (;;) {
        try {
          fillers.push(openSync('/dev/null', 'r'));
        } catch (err) {
          say(`full ${fillers.length} ${(err as NodeJS.ErrnoException).code}`);
          return;
        }
      }
    },
    free: () => {
      const f = fillers.pop();
      if (f !== undefined) closeSync(f);
      say('freed');
    },
    info: () => say(`info ${JSON.stringify(proxy.info())}`),
    exit: () => {
      for (const f of fillers) closeSync(f);
      proxy.close();
      process.exit(0);
    },
  };
  createInterface({ input: process.stdin }).on('line', (l) => commands[l]?.());
  say(`port ${String(inspectFd(fd).port)} fds ${readdirSync('/proc/self/fd').length}`);
}

/** A bound Node dgram socket on 127.0.0.1, closed at teardown. */
async function bound(t: Test): Promise<Socket> {
  const s = createSocket('udp4');
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  t.teardown(() => s.close());
  return s;
}

if (process.env[CHILD_ENV] === '1') {
  await childMain();
} else {
  void t.test('EMFILE: a flow that cannot be opened fails alone, counted; once an fd is free the client is answered', { skip: existsSync('/usr/bin/prlimit') ? false : 'needs prlimit(1)', timeout: 60_000 }, async (t) => {
    const backend = await bound(t);
    backend.on('message', (msg, from) => backend.send(Buffer.concat([msg, Buffer.from('|answer')]), from.port, from.address));
    const client = await bound(t);
    const got: string[] = [];
    client.on('message', (m) => got.push(m.toString()));

    // Only the TypeScript loader: the test runner's process-info hook would itself need fds at exit.
    const execArgv = process.execArgv.filter((a) => a.includes('typescript'));
    const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: '1', BACKEND_PORT: String(backend.address().port) };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [...execArgv, fileURLToPath(import.meta.url)], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => child.kill('SIGKILL'));
    const seen: string[] = [];
    const waiters: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = [];
    createInterface({ input: child.stdout }).on('line', (l) => {
      seen.push(l);
      for (const w of [...waiters]) {
        if (w.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
    /** The first line (from `from` on) that passes `test`; fails after 20 s with what the child said. */
    const waitLine = (test: (l: string) => boolean, what: string, from = 0): Promise<string> => {
      const found = seen.slice(from).find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${what}' from the engine; it said: ${seen.join(' | ')}`)), 20_000);
        waiters.push({ test, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    };
    const send = (line: string): void => void child.stdin.write(`${line}\n`);
    const info = async (): Promise<Record<string, number | boolean>> => {
      const from = seen.length;
      send('info');
      return JSON.parse((await waitLine((l) => l.startsWith('info '), 'info', from)).slice(5)) as Record<string, number | boolean>;
    };

    const ready = await waitLine((l) => l.startsWith('port '), 'port');
    const [, portText, , fdsText] = ready.split(' ');
    const port = Number(portText);
    const limit = Number(fdsText) + HEADROOM;
    const pl = spawn('/usr/bin/prlimit', [`--pid=${String(child.pid)}`, `--nofile=${limit}:${limit}`], { stdio: 'inherit' });
    t.equal((await once(pl, 'close'))[0], 0, 'prlimit lowered the limit');
    send('fill');
    t.match(await waitLine((l) => l.startsWith('full '), 'full'), / EMFILE$/, 'the child took every fd left');

    // No fd for the flow's upstream socket: this datagram is lost, counted, and said.
    client.send('first', port, '127.0.0.1');
    await waitLine((l) => l.startsWith('event ') && l.includes('"drop"'), 'drop event');
    t.match(JSON.parse(seen.find((l) => l.includes('"drop"'))?.slice(6) ?? '{}'), { type: 'drop', dropped: 0, truncated: 0, failed: 1 }, 'the drop event counts it as failed');
    t.match(await info(), { active: true, flows: 0, failed: 1, datagramsIn: 1, datagramsOut: 0 }, 'no flow, one failed, the engine still active');
    t.same(got, [], 'nothing came back');

    // One fd free: the client's next datagram opens its flow and is answered.
    send('free');
    await waitLine((l) => l === 'freed', 'freed');
    client.send('second', port, '127.0.0.1');
    while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
    t.same(got, ['second|answer'], 'answered once an fd was free');
    t.match(await info(), { active: true, flows: 1, failed: 1, datagramsIn: 2, datagramsOut: 1 });
    t.equal(child.exitCode, null, 'the engine process is still running');

    send('exit'); // it closes its /dev/null fds first
    t.equal((await once(child, 'close'))[0], 0, 'the child exits cleanly');
  });
}
