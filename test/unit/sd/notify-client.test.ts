import t, { type Test } from 'tap';
import { join } from 'node:path';
import { isPodsockError, type PodsockError } from '../../../src/errors.js';
import { openDgram, type ReceivedDatagram } from '../../../src/native/dgram.js';
import { createNotifier, notifySocketAddress, watchdogFromEnv } from '../../../src/sd/notify-client.js';
import { NotifyServer, type NotifyMessage } from '../../../src/sd/notify-server.js';
import { tmpDir as tmp } from '../../helpers/tmp-dir.js';

function thrown(fn: () => unknown): PodsockError {
  try {
    fn();
  } catch (err) {
    return err as PodsockError;
  }
  throw new Error('expected a throw');
}

/** A raw receiver at `address` and a way to await the next datagram. */
function receiver(t: Test, address: string): () => Promise<ReceivedDatagram> {
  const sock = openDgram(address);
  t.teardown(() => sock.close());
  const queue: ReceivedDatagram[] = [];
  let waiter: (() => void) | null = null;
  sock.startReceiving((msgs) => {
    queue.push(...msgs);
    waiter?.();
  });
  return async () => {
    while (queue.length === 0) await new Promise<void>((r) => (waiter = r));
    waiter = null;
    return queue.shift() as ReceivedDatagram;
  };
}

void t.test('no NOTIFY_SOCKET: disabled, notify is a silent no-op', async (t) => {
  const n = createNotifier({ PATH: '/usr/bin' });
  t.equal(n.enabled, false);
  t.equal(n.address, null);
  t.doesNotThrow(() => n.notify({ READY: '1' }));
  t.doesNotThrow(() => n.close());
  t.equal(notifySocketAddress({}), null);
});

void t.test('malformed NOTIFY_SOCKET values are refused, naming the value and what was expected', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /^Invalid NOTIFY_SOCKET '': expected an absolute path or an abstract socket name starting with '@'$/],
    ['run/notify', /^Invalid NOTIFY_SOCKET 'run\/notify': expected an absolute path or an abstract socket name/],
    ['vsock:2:1234', /^Unsupported NOTIFY_SOCKET 'vsock:2:1234': vsock addresses are not supported, expected an absolute path/],
    ['vsock-dgram:2:1', /^Unsupported NOTIFY_SOCKET 'vsock-dgram:2:1'/],
    ['@', /^Invalid NOTIFY_SOCKET '@': the abstract name after '@' is empty$/],
    [`/run/${'n'.repeat(110)}`, /^Invalid NOTIFY_SOCKET '\/run\/n+': the path is 115 bytes, longer than the 107/],
  ];
  for (const [value, message] of cases) {
    const err = thrown(() => createNotifier({ NOTIFY_SOCKET: value }));
    t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY'), `${JSON.stringify(value)}: PODSOCK_ERR_NOTIFY`);
    t.match(err.message, message);
  }
});

void t.test('round trip to a NotifyServer on a path: fields and the real sender pid/uid/gid', async (t) => {
  const got: NotifyMessage[] = [];
  let arrived!: () => void;
  const done = new Promise<void>((r) => (arrived = r));
  const server = await NotifyServer.create({
    parentDir: tmp(t),
    onMessage: (m) => {
      got.push(m);
      if (got.length === 2) arrived();
    },
  });
  t.teardown(() => server.close());
  const n = createNotifier({ NOTIFY_SOCKET: server.socketPath });
  t.teardown(() => n.close());
  t.equal(n.enabled, true);
  t.equal(n.address, server.socketPath);
  n.notify({ READY: '1', STATUS: 'Serving' });
  n.notify([
    ['STATUS', 'a'],
    ['STATUS', 'b'],
  ]);
  await done;
  const creds = { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.(), fdCount: 0 };
  t.same(got, [
    { ...creds, fields: [['READY', '1'], ['STATUS', 'Serving']] },
    { ...creds, fields: [['STATUS', 'a'], ['STATUS', 'b']] },
  ]);
});

void t.test('abstract NOTIFY_SOCKET', async (t) => {
  const name = `@podsock-test-client-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const next = receiver(t, name);
  const n = createNotifier({ NOTIFY_SOCKET: name });
  t.teardown(() => n.close());
  n.notify({ READY: '1', STATUS: 'abstract works' });
  const d = await next();
  t.equal(d.data.toString(), 'READY=1\nSTATUS=abstract works');
  t.equal(d.pid, process.pid);
  t.equal(d.truncated, false);
});

void t.test('4096 bytes are sent whole; 4097 are refused, never truncated', async (t) => {
  const name = `@podsock-test-size-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const next = receiver(t, name);
  const n = createNotifier({ NOTIFY_SOCKET: name });
  t.teardown(() => n.close());
  const exact = 'x'.repeat(4096 - 'STATUS='.length);
  n.notify({ STATUS: exact });
  const d = await next();
  t.equal(d.data.length, 4096);
  t.equal(d.truncated, false);
  t.equal(d.data.toString(), `STATUS=${exact}`);

  const err = thrown(() => n.notify({ STATUS: `${exact}y` }));
  t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY_TOO_LARGE'));
  t.equal(err.message, 'Notify message of 4097 bytes is larger than the 4096 bytes systemd accepts');
  // Multi-byte characters count as bytes, not as string length.
  const wide = thrown(() => n.notify({ STATUS: 'é'.repeat(2045) })); // 7 + 4090 bytes
  t.ok(isPodsockError(wide, 'PODSOCK_ERR_NOTIFY_TOO_LARGE'));
  // Nothing of the refused messages went out: the next datagram is the sentinel.
  n.notify({ X_SENTINEL: '1' });
  t.equal((await next()).data.toString(), 'X_SENTINEL=1');
});

void t.test('format errors and send failures are PODSOCK_ERR_NOTIFY', async (t) => {
  const missing = join(tmp(t), 'nobody.sock');
  const n = createNotifier({ NOTIFY_SOCKET: missing });
  t.teardown(() => n.close());
  const bad = thrown(() => n.notify({ STATUS: 'a\nb' }));
  t.ok(isPodsockError(bad, 'PODSOCK_ERR_NOTIFY'));
  t.match(bad.message, /'STATUS'.*newline/);
  const err = thrown(() => n.notify({ READY: '1' }));
  t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY'));
  t.equal(err.details.errno, 'ENOENT');
  t.ok(isPodsockError(err.cause, 'PODSOCK_ERR_NATIVE'), 'the native error is the cause');
  t.match(err.message, /^Failed to send notify message to NOTIFY_SOCKET '.*nobody\.sock': Failed to send datagram to '.*': sendto: ENOENT/);
  n.close();
  n.close();
  t.doesNotThrow(() => n.notify({ READY: '1' }), 'a closed notifier does nothing');
});

void t.test('watchdogFromEnv follows sd_watchdog_enabled(3)', async (t) => {
  const pid = 4242;
  t.equal(watchdogFromEnv({}, pid), null, 'unset');
  t.same(watchdogFromEnv({ WATCHDOG_USEC: '30000000' }, pid), { intervalMs: 30000 });
  t.same(watchdogFromEnv({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, pid), { intervalMs: 30000 });
  t.equal(watchdogFromEnv({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4243' }, pid), null, 'for another pid');
  t.same(watchdogFromEnv({ WATCHDOG_USEC: '1500' }, pid), { intervalMs: 1 }, 'whole milliseconds');
  t.same(watchdogFromEnv({ WATCHDOG_USEC: '999' }, pid), { intervalMs: 1 }, 'at least 1 ms');
  t.same(watchdogFromEnv({ WATCHDOG_USEC: '18446744073709551614' }, pid), { intervalMs: 2 ** 31 - 1 }, 'capped to a Node timer');
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ WATCHDOG_USEC: '' }, /^Invalid WATCHDOG_USEC '': expected a positive number of microseconds$/],
    [{ WATCHDOG_USEC: '0' }, /^Invalid WATCHDOG_USEC '0': expected a positive, finite number/],
    [{ WATCHDOG_USEC: '18446744073709551615' }, /'18446744073709551615': expected a positive, finite/],
    [{ WATCHDOG_USEC: '99999999999999999999' }, /'99999999999999999999': expected a positive, finite/],
    [{ WATCHDOG_USEC: '-5' }, /'-5'/],
    [{ WATCHDOG_USEC: '30s' }, /'30s'/],
    [{ WATCHDOG_USEC: ' 30' }, /' 30'/],
    [{ WATCHDOG_USEC: '30', WATCHDOG_PID: 'abc' }, /^Invalid WATCHDOG_PID 'abc': expected a process id$/],
    [{ WATCHDOG_USEC: '30', WATCHDOG_PID: '0' }, /WATCHDOG_PID '0'/],
    [{ WATCHDOG_USEC: '30', WATCHDOG_PID: '' }, /WATCHDOG_PID ''/],
  ];
  for (const [env, message] of bad) {
    const err = thrown(() => watchdogFromEnv(env, pid));
    t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY'), JSON.stringify(env));
    t.match(err.message, message);
  }
});
