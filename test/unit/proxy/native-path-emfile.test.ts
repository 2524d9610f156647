// Running out of fds (EMFILE) in the native data path: accepting pauses and goes on, a connection whose
// backend socket cannot be created fails alone, and once fds are free again new connections are served.
// The proxy runs in a child process whose fd limit is set with prlimit(1); the clients and the backend
// live in this process, so only the proxy hits the limit.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const CHILD_ENV = 'PODSOCK_EMFILE_TEST_CHILD';
/** fds the child may open beyond what it has once the proxy is up. */
const HEADROOM = 12;

async function childMain(): Promise<void> {
  const { Proxy } = await import('../../../src/proxy/proxy.js');
  const { inspectFd, listenSocket } = await import('../../../src/native/fds.js');
  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 128 });
  const proxy = new Proxy({ listeners: [{ name: 'web', fd }], maxConnections: 1000, maxPending: 1000, connectAttempts: 1, pipe: 'native' });
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  proxy.on('warning', (err) => say(`warning ${err.message.includes('EMFILE') ? 'EMFILE' : err.message}`));
  proxy.on('connectionError', (err) => say(`connectionError ${err.message.includes('EMFILE') ? 'EMFILE' : err.message}`));
  proxy.on('count', (n) => say(`count ${n}`));
  await proxy.start();
  proxy.setTargets(() => ({ host: '127.0.0.1', port: Number(process.env.BACKEND_PORT) }));
  say(`port ${String(inspectFd(fd).port)} fds ${readdirSync('/proc/self/fd').length}`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

if (process.env[CHILD_ENV] === '1') {
  await childMain();
} else {
  void t.test('EMFILE: accepting pauses and resumes; the proxy serves again once fds are free', { skip: existsSync('/usr/bin/prlimit') ? false : 'needs prlimit(1)' }, async (t) => {
    const held: Socket[] = [];
    const backend = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      held.push(s);
      s.on('data', (d: Buffer) => {
        if (d.toString().startsWith('ping')) s.end('pong');
      });
      s.on('end', () => s.end());
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    t.teardown(() => {
      for (const s of held) s.destroy();
      backend.close();
    });
    // Only the TypeScript loader: the test runner's process-info hook would itself need fds at exit.
    const execArgv = process.execArgv.filter((a) => a.includes('typescript'));
    const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: '1', BACKEND_PORT: String((backend.address() as AddressInfo).port) };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [...execArgv, fileURLToPath(import.meta.url)], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout });
    const seen: string[] = [];
    const waiters: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = [];
    lines.on('line', (l) => {
      seen.push(l);
      for (const w of [...waiters]) {
        if (w.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
    const waitLine = (test: (l: string) => boolean, what: string): Promise<string> => {
      const found = seen.find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${what}' from the proxy; it said: ${seen.filter((l, i) => i < 30 || !l.startsWith('warning')).join(' | ')}`)), 20_000);
        waiters.push({ test, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    };
    const ready = await waitLine((l) => l.startsWith('port '), 'port');
    const [, portText, , fdsText] = ready.split(' ');
    const port = Number(portText);
    const limit = Number(fdsText) + HEADROOM;
    // Lower the running child's soft limit (prlimit --pid) now that it has everything it needs to run;
    // the hard limit stays, so that the soft one can be put back (raising a hard limit needs
    // CAP_SYS_RESOURCE, setrlimit(2)).
    const soft = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/limits`, 'utf8'))?.[1] ?? '1024';
    const pl = spawn('/usr/bin/prlimit', [`--pid=${child.pid}`, `--nofile=${limit}:`], { stdio: 'inherit' });
    const [code] = (await once(pl, 'close')) as [number];
    t.equal(code, 0, 'prlimit lowered the limit');

    // Hold connections open until the proxy runs out of fds (2 per relayed connection).
    const clients: Socket[] = [];
    t.teardown(() => {
      for (const c of clients) c.destroy();
    });
    for (let i = 0; i < HEADROOM; i++) {
      const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      c.on('error', () => undefined);
      clients.push(c);
      // Once the proxy is out of fds, a connection it accepted but could not pair with a backend socket
      // is reset ("fails alone"), and that reset can arrive before the connect completes here.
      await new Promise<void>((resolve) => {
        c.once('connect', resolve);
        c.once('error', () => resolve());
      });
    }
    const hit = await waitLine((l) => l === 'warning EMFILE' || l === 'connectionError EMFILE', 'EMFILE');
    t.ok(hit, `the proxy ran out of fds and said so (${hit})`);
    // Free everything, then a new connection must be served end to end.
    for (const c of clients) c.destroy();
    await waitLine((l) => l === 'count 0', 'count 0');
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.write('ping');
    await once(s, 'end');
    s.destroy();
    t.equal(Buffer.concat(chunks).toString(), 'pong', 'served again');
    t.equal(child.exitCode, null, 'the proxy is still running');
    // Give the fds back before it exits: the test runner's hook in the child writes a file at exit.
    const [back] = (await once(spawn('/usr/bin/prlimit', [`--pid=${child.pid}`, `--nofile=${soft}:`], { stdio: 'inherit' }), 'close')) as [number];
    t.equal(back, 0, 'prlimit gave the fds back');
    child.stdin?.end();
    await once(child, 'close');
  });
}
