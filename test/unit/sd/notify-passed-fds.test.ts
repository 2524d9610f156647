// fds a container passes with its notify datagrams are closed off the event loop (native/closer.c): a
// close() that blocks (a TCP socket with SO_LINGER and unsent data, socket(7)) must not stop timers.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closerInfo } from '../../../src/native/closer.js';
import { gapMeter } from '../../helpers/loop-gap.js';
import { notifyServer as serve } from '../../helpers/notify.js';
import { PYTHON } from '../../helpers/python.js';

/**
 * A python3 child given the socket path and the name of a file it creates once it has closed its copy
 * of the lingering socket (`closed`); `lines` collects its stdout lines. Killed at teardown.
 */
function python(t: Test, code: string, socketPath: string) {
  const marks = mkdtempSync(join(tmpdir(), 'podsock-fds-mark-'));
  t.teardown(() => rmSync(marks, { recursive: true, force: true }));
  const closed = join(marks, 'closed');
  const child = spawn(PYTHON, ['-c', code, socketPath, closed], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  /** The first line starting with `prefix`, once it came. */
  const line = async (prefix: string): Promise<string> => {
    for (;;) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found !== undefined) return found;
      await new Promise<void>((r) => (wake = r));
    }
  };
  /**
   * Tell the child to pass the lingering socket and hold this thread (and so the event loop, which must
   * not receive it before the child's own copy is closed) until the child says it closed its copy: on a
   * loaded machine that can take longer than any fixed wait.
   */
  const passWhileHeld = (): void => {
    child.stdin.write('go\n');
    const deadline = performance.now() + 60_000;
    while (!existsSync(closed) && performance.now() < deadline) holdLoop(10);
  };
  return { child, line, passWhileHeld };
}

// A TCP socket with SO_LINGER {1, 30} whose send buffer is full and stays full (the listener never
// accepts and its receive buffer is small, so the window closes; the loop ends once the socket has not
// been writable for half a second): closing the last reference to it blocks for up to 30 s (socket(7), SO_LINGER). The sender
// passes it with a notify message and closes its own copy while podsock's event loop is held (see
// below), so podsock's close is the last one; it prints how long its own close took to show that. It
// stays alive (and with it the listener) until the test kills it.
const LINGER_SETUP = [
  'import os,select,socket,struct,sys,time',
  'l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,4096); l.bind(("127.0.0.1",0)); l.listen(1)',
  'c=socket.socket()',
  'c.setsockopt(socket.SOL_SOCKET,socket.SO_SNDBUF,4096)',
  'c.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack("ii",1,30))',
  'c.connect(l.getsockname()); c.setblocking(False)',
  'while select.select([],[c],[],0.5)[1]:',
  '  try: c.send(b"x"*65536)',
  '  except BlockingIOError: pass',
  's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)',
  's.connect(sys.argv[1])',
  'print("filled",flush=True)',
  'sys.stdin.readline()',
  'socket.send_fds(s,[b"STATUS=linger"],[c.fileno()])',
  't=time.monotonic(); c.close()',
  'open(sys.argv[2],"w").close()',
];
const LINGER_SENDER = [...LINGER_SETUP, 'print("sent %.3f" % (time.monotonic()-t),flush=True)', 'sys.stdin.read()'].join('\n');

/** Block this thread (and so the event loop) for `ms`. */
function holdLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// Without the closer this stalls for the whole 30 s linger time; the timeout leaves room to see that.
void t.test('a passed TCP socket whose close() lingers does not stall the event loop', { timeout: 90_000 }, async (t) => {
  const { server, delivered } = await serve(t);
  const sender = python(t, LINGER_SENDER, server.socketPath);
  await sender.line('filled');
  // Let the sender pass the socket and close its copy before this process can receive it.
  sender.passWhileHeld();
  const meter = gapMeter(t);
  const [m] = await delivered(1);
  await new Promise((r) => setTimeout(r, 100));
  const gap = meter.stop();
  const senderClose = Number((await sender.line('sent ')).slice(5));
  t.comment(`the sender's close took ${senderClose} s; longest event loop stall while receiving the lingering socket: ${gap.toFixed(1)} ms`);
  t.ok(senderClose < 1, "the sender's close was not the last one (it did not linger)");
  t.same(m?.fields, [['STATUS', 'linger']]);
  t.equal(m?.fdCount, 1);
  t.ok(gap < 5000, `the batch did not wait for the linger time (longest stall ${gap.toFixed(0)} ms)`);
});


// The same lingering socket first, so that the closer thread is stuck in its close(); then 5 messages of
// 253 fds each (SCM_MAX_FD copies of a pipe's write end) and READY=1. podsock reads a message only while
// its closer has room for a whole message's fds, so it holds at most the closer's capacity and stops
// reading; it reads the rest once the stuck close ends (the sender closes its listener, which resets the
// connection), and then every copy of the pipe's write end is closed (the sender sees POLLHUP).
const FLOOD_SENDER = [
  ...LINGER_SETUP,
  'r,w=os.pipe()',
  'for i in range(5): socket.send_fds(s,[b"X_N=%d" % i],[w]*253)',
  's.send(b"READY=1"); os.close(w)',
  'print("sent",flush=True)',
  'sys.stdin.readline()',
  'l.close()',
  'p=select.poll(); p.register(r,select.POLLHUP)',
  'ev=p.poll(20000)',
  'print("pipe " + ("hup" if ev else "open"),flush=True)',
  'sys.stdin.read()',
].join('\n');

/** Resolve once `check()` holds, looking every 20 ms; after `maxMs` resolve anyway (the caller asserts). */
async function until(check: () => boolean, maxMs = Infinity): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (!check() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

const SCM_MAX_FD = 253;

void t.test('a peer cannot make podsock hold more passed fds than the closer queue; receiving resumes', { timeout: 90_000 }, async (t) => {
  // The previous test's stuck close ends when its sender is killed.
  await until(() => closerInfo().queued + closerInfo().closing === 0);
  const { server, messages, delivered } = await serve(t);
  const sender = python(t, FLOOD_SENDER, server.socketPath);
  await sender.line('filled');
  const fdsBefore = readdirSync('/proc/self/fd').length;
  sender.passWhileHeld();
  await sender.line('sent');
  // A message is read only while SCM_MAX_FD slots are free besides the stuck lingering socket.
  const { peerCapacity, capacity } = closerInfo();
  const fit = Math.min(5, Math.floor((peerCapacity - 1 - SCM_MAX_FD) / SCM_MAX_FD) + 1);
  await delivered(1 + fit);
  await new Promise((r) => setTimeout(r, 300));
  await until(() => closerInfo().closing === 1, 10_000);
  const held = closerInfo();
  const fdsHeld = readdirSync('/proc/self/fd').length - fdsBefore;
  t.comment(`holding ${fdsHeld} passed fds (${held.queued} queued, ${held.closing} closing; capacity ${capacity})`);
  t.equal(messages.length, 1 + fit, `read the lingering socket and ${fit} messages of ${SCM_MAX_FD} fds, then stopped`);
  t.equal(held.closing, 1, 'the closer is stuck in the lingering close');
  t.equal(held.queued, fit * SCM_MAX_FD);
  t.ok(fdsHeld <= capacity, `at most the closer's capacity of fds held (${fdsHeld})`);
  sender.child.stdin.write('release\n');
  const all = await delivered(1 + 5 + 1);
  t.same(
    all.map((m) => m.fields[0]?.[0]),
    ['STATUS', 'X_N', 'X_N', 'X_N', 'X_N', 'X_N', 'READY'],
  );
  t.equal(await sender.line('pipe '), 'pipe hup', 'every passed copy of the pipe was closed');
  await until(() => closerInfo().queued + closerInfo().closing === 0);
  t.equal(server.stats.fdsClosed, 1 + 5 * SCM_MAX_FD);
});

// Closing the notify socket releases the fds of the datagrams still queued in it; the lingering socket
// is sent and its sender's copy closed while this process's loop is held, and the server is closed
// before the loop could read it.
void t.test('closing the server while a lingering socket waits in its queue returns at once', { timeout: 90_000 }, async (t) => {
  await until(() => closerInfo().queued + closerInfo().closing === 0);
  const { server, messages } = await serve(t);
  const sender = python(t, LINGER_SENDER, server.socketPath);
  await sender.line('filled');
  sender.passWhileHeld();
  const started = performance.now();
  server.close();
  const took = performance.now() - started;
  const senderClose = Number((await sender.line('sent ')).slice(5));
  t.comment(`the sender's close took ${senderClose} s; closing the server took ${took.toFixed(1)} ms`);
  t.ok(senderClose < 1, "the sender's close was not the last one (it did not linger)");
  t.equal(messages.length, 0, 'the datagram was still queued');
  t.ok(took < 5000, `close() did not wait for the linger time (${took.toFixed(0)} ms)`);
  // The closer thread takes the socket from its queue when the scheduler lets it run.
  await until(() => closerInfo().closing === 1 || closerInfo().queued === 0, 10_000);
  t.equal(closerInfo().closing, 1, 'the closer thread has the lingering socket');
});
