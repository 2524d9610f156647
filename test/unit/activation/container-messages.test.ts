import t from 'tap';
import { ContainerMessages } from '../../../src/activation/container-messages.js';
import { StatusLine } from '../../../src/activation/status-line.js';
import { Watchdog } from '../../../src/activation/watchdog.js';
import { recordLog } from './record-log.js';

function relay(opts: { watchdogMs?: number | null } = {}) {
  const { log, records } = recordLog();
  const sent: Array<Array<[string, string]>> = [];
  const notify = (fields: Array<[string, string]>): void => void sent.push(fields);
  const status = new StatusLine();
  status.update('Starting container');
  const watchdog = new Watchdog({ intervalMs: opts.watchdogMs ?? null, notify, log });
  let ready = 0;
  const messages = new ContainerMessages({ log, notify, status, watchdog, onReady: () => ready++ });
  const send = (fields: Array<[string, string]>): void => messages.onMessage({ fields, pid: 42 } as Parameters<typeof messages.onMessage>[0]);
  return { messages, send, sent, records, ready: () => ready };
}

void t.test("STATUS= joins podsock's status line; allowed keys go on in one datagram, in order", async (t) => {
  const r = relay();
  r.send([
    ['STATUS', 'loading'],
    ['EXTEND_TIMEOUT_USEC', '5000000'],
  ]);
  t.same(r.sent, [
    [
      ['STATUS', 'Starting container; container: loading'],
      ['EXTEND_TIMEOUT_USEC', '5000000'],
    ],
  ]);
});

void t.test('READY=1 while starting is the readiness signal; MAINPID= is dropped and logged', async (t) => {
  const r = relay();
  r.send([
    ['READY', '1'],
    ['MAINPID', '1'],
  ]);
  t.equal(r.ready(), 1);
  t.notOk(
    r.sent.flat().some(([k]) => k === 'MAINPID'),
    'MAINPID never reaches systemd',
  );
  t.ok(
    r.records.some((x) => x.level === 'debug' && x.msg.startsWith('Dropped MAINPID= from the container') && x.fields.pid === 42),
    'the drop is logged at debug level with the sender',
  );
});

void t.test('the phase decides: EXTEND_TIMEOUT_USEC= only while starting', async (t) => {
  const r = relay();
  r.messages.phase = 'ready';
  r.send([['EXTEND_TIMEOUT_USEC', '5000000']]);
  t.same(r.sent, [], 'nothing sent once ready');
});

void t.test("WATCHDOG=1 goes on only when systemd watches podsock; the first is logged once", async (t) => {
  const off = relay({ watchdogMs: null });
  off.send([['WATCHDOG', '1']]);
  t.same(off.sent, [], 'no WatchdogSec=: nothing to forward');
  const on = relay({ watchdogMs: 10_000 });
  on.send([['WATCHDOG', '1']]);
  on.send([['WATCHDOG', '1']]);
  t.same(on.sent, [[['WATCHDOG', '1']], [['WATCHDOG', '1']]]);
  t.equal(on.records.filter((x) => x.msg.startsWith('The container pings the watchdog itself')).length, 1);
});
