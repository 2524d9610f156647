/**
 * A hostile container against the real notify path: a python3 process (standing in for the container)
 * sends datagrams to a real NotifyServer, and every delivered message goes through the relay filter
 * the way the supervisor runs it. The container must not be able to change the unit's main pid, put
 * fds into systemd's fd store, widen NotifyAccess= or get anything but the allowed keys forwarded;
 * oversized, NUL-containing, non-UTF-8 and empty datagrams are dropped and counted; every fd it passes
 * is closed at once (the sender sees POLLHUP), even for datagrams that are dropped.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import type { NotifyMessage } from '../../../src/sd/notify-server.js';
import { closerInfo } from '../../../src/native/closer.js';
import { filterContainerMessage, type RelayPhase } from '../../../src/sd/relay-filter.js';
import { notifyServer as serve } from '../../helpers/notify.js';
import { python } from '../../helpers/python.js';

const ALLOWED = ['STATUS', 'ERRNO', 'READY', 'RELOADING', 'STOPPING', 'EXTEND_TIMEOUT_USEC'];

/** The relay decisions for every delivered message in one phase, merged (what the supervisor would do). */
function relay(messages: NotifyMessage[], phase: RelayPhase) {
  const forward: Array<[string, string]> = [];
  const dropped: string[] = [];
  let ready = false;
  for (const m of messages) {
    const d = filterContainerMessage(m.fields, phase);
    forward.push(...d.forward);
    dropped.push(...d.dropped.map((x) => x.key));
    ready ||= d.ready;
  }
  return { forward, dropped, ready };
}

// The container's side. Each fd it passes is the write end of a pipe it keeps the read end of: once
// its own copy is closed, POLLHUP on the read end proves the receiver closed the passed copy too.
const HOSTILE = String.raw`
import json, os, select, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(sys.argv[1])
pipes = {name: os.pipe() for name in ("fdstore", "barrier", "mainpidfd", "many")}
def send(data, fds=()):
    if fds: socket.send_fds(s, [data], list(fds))
    else: s.send(data)
send(b"MAINPID=1")
send(b"FDSTORE=1\nFDNAME=evil", [pipes["fdstore"][1]])
send(b"NOTIFYACCESS=all")
send(b"STATUS=" + b"A" * 4993)
send(b"READY=1\0MAINPID=1")
send(b"STATUS=\xff\xfe")
send(b"BARRIER=1", [pipes["barrier"][1]])
send(b"MAINPIDFD=1", [pipes["mainpidfd"][1]])
send(b"READY=1\nMAINPID=1\nSTATUS=up\nEXTEND_TIMEOUT_USEC=1000000\nX_EVIL=1")
send(b"FDSTORE=1", [pipes["many"][1]] * 253)
send(b"STATUS=" + b"y" * 4089)
send(b"mainpid=1")
send(b"")
send(b"\n")
send(b"X_DONE=1")
result = {"pid": os.getpid()}
for name, (r, w) in pipes.items():
    os.close(w)
    p = select.poll()
    p.register(r, select.POLLHUP)
    ev = p.poll(20000)
    result[name] = "hup" if ev and ev[0][1] & select.POLLHUP else "open"
print(json.dumps(result))
`;

void t.test('hostile datagrams: dropped and counted, fds closed, nothing forbidden forwarded', async (t) => {
  const { server, drops, delivered } = await serve(t);
  const out = JSON.parse(await python(t, HOSTILE, server.socketPath)) as Record<string, string | number>;
  const messages = await delivered(9);

  t.same(out, { pid: out.pid, fdstore: 'hup', barrier: 'hup', mainpidfd: 'hup', many: 'hup' }, 'every passed fd was closed by the receiver');
  t.same(server.stats, { received: 15, delivered: 9, droppedTruncated: 1, droppedMalformed: 5, droppedRate: 0, fdsClosed: 256 }, 'counters');
  t.same(
    drops.map((d) => [d.reason, d.pid, d.detail]),
    [
      ['truncated', out.pid, 'datagram larger than 4096 bytes (or its control data was cut off)'],
      ['malformed', out.pid, 'the message contains a NUL byte at offset 7'],
      ['malformed', out.pid, 'the message is not valid UTF-8'],
      ['malformed', out.pid, "line 1 has an invalid key 'mainpid' (expected A-Z, 0-9 and _)"],
      ['malformed', out.pid, 'the message is empty'],
      ['malformed', out.pid, 'line 1 is empty'],
    ],
    'drops, in order, with their reasons',
  );
  t.same(
    messages.map((m) => [m.pid, m.fdCount, m.fields.map(([k]) => k).join(',')]),
    [
      [out.pid, 0, 'MAINPID'],
      [out.pid, 1, 'FDSTORE,FDNAME'],
      [out.pid, 0, 'NOTIFYACCESS'],
      [out.pid, 1, 'BARRIER'],
      [out.pid, 1, 'MAINPIDFD'],
      [out.pid, 0, 'READY,MAINPID,STATUS,EXTEND_TIMEOUT_USEC,X_EVIL'],
      [out.pid, 253, 'FDSTORE'],
      [out.pid, 0, 'STATUS'],
      [out.pid, 0, 'X_DONE'],
    ],
    'delivered messages: sender pid, fds that came with them, keys',
  );

  const status4096 = ['STATUS', 'y'.repeat(4089)];
  const starting = relay(messages, 'starting');
  t.same(starting.forward, [['STATUS', 'up'], ['EXTEND_TIMEOUT_USEC', '1000000'], status4096], 'starting: only STATUS and EXTEND_TIMEOUT_USEC');
  t.equal(starting.ready, true, 'starting: READY=1 is taken as the readiness signal, not forwarded');
  t.same(starting.dropped, ['MAINPID', 'FDSTORE', 'FDNAME', 'NOTIFYACCESS', 'BARRIER', 'MAINPIDFD', 'MAINPID', 'X_EVIL', 'FDSTORE', 'X_DONE'], 'starting: dropped keys');

  const ready = relay(messages, 'ready');
  t.same(ready.forward, [['READY', '1'], ['STATUS', 'up'], status4096], 'ready: READY=1 is forwarded (a reload cycle), EXTEND is not');
  t.equal(ready.ready, false, 'ready: no second readiness signal');

  const stopping = relay(messages, 'stopping');
  t.same(stopping.forward, [['STATUS', 'up'], status4096], 'stopping: STATUS only');

  for (const [phase, r] of [['starting', starting], ['ready', ready], ['stopping', stopping]] as const) {
    t.same(r.forward.filter(([k]) => !ALLOWED.includes(k)), [], `${phase}: nothing outside the allowed keys`);
  }
});

void t.test('fds on a flood of rate-dropped datagrams are closed too: nothing leaks into podsock', async (t) => {
  const fdCount = (): number => readdirSync('/proc/self/fd').length;
  const { server, delivered } = await serve(t, { maxPerSecond: 5, burst: 5 });
  const before = fdCount();
  const total = 2000;
  const code = [
    'import os, socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.connect(sys.argv[1])',
    'r, w = os.pipe()',
    `for i in range(${total}): socket.send_fds(s, [b"FDSTORE=1\\nX_N=%d" % i], [w] * 10)`,
    's.send(b"X_DONE=1")',
    'print("sent")',
  ].join('\n');
  t.equal(await python(t, code, server.socketPath), 'sent', 'the sender finished');
  // The sender blocks while the queue is full, so at most one queue's worth is still unread here.
  while (server.stats.received < total + 1) await new Promise((r) => setTimeout(r, 20));
  const s = server.stats;
  t.comment(`delivered ${s.delivered}, rate-dropped ${s.droppedRate}`);
  t.equal(s.received, total + 1, 'all received');
  t.equal(s.fdsClosed, total * 10, 'every passed fd was counted as closed');
  t.ok(s.droppedRate > 0, 'the flood was rate limited');
  t.equal(s.delivered + s.droppedRate, total + 1, 'delivered or rate-dropped');
  // Passed fds are closed on the addon's closer thread (native/closer.c), which may still be at work.
  for (let i = 0; i < 500 && closerInfo().queued + closerInfo().closing > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(fdCount(), before, 'no fd of the flood is left open in this process');
  await delivered(s.delivered);
});
