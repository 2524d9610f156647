import t from 'tap';
import { filterContainerMessage } from '../../../src/sd/relay-filter.js';

void t.test('starting: READY is captured, STATUS/EXTEND relayed, MAINPID and FDSTORE dropped', async (t) => {
  const d = filterContainerMessage(
    [
      ['STATUS', 'warming up'],
      ['EXTEND_TIMEOUT_USEC', '5000000'],
      ['READY', '1'],
      ['MAINPID', '1'],
      ['FDSTORE', '1'],
      ['FDNAME', 'x'],
      ['NOTIFYACCESS', 'all'],
      ['X_CUSTOM', 'y'],
    ],
    'starting',
  );
  t.same(d.forward, [
    ['STATUS', 'warming up'],
    ['EXTEND_TIMEOUT_USEC', '5000000'],
  ]);
  t.equal(d.ready, true);
  t.same(
    d.dropped.map((x) => x.key),
    ['MAINPID', 'FDSTORE', 'FDNAME', 'NOTIFYACCESS', 'X_CUSTOM'],
  );
});

void t.test('ready: reload cycle relayed, EXTEND dropped, WATCHDOG flagged', async (t) => {
  const d = filterContainerMessage(
    [
      ['RELOADING', '1'],
      ['READY', '1'],
      ['EXTEND_TIMEOUT_USEC', '1'],
      ['WATCHDOG', '1'],
      ['ERRNO', '2'],
      ['STOPPING', '1'],
    ],
    'ready',
  );
  t.same(d.forward, [
    ['RELOADING', '1'],
    ['READY', '1'],
    ['ERRNO', '2'],
    ['STOPPING', '1'],
  ]);
  t.equal(d.ready, false);
  t.equal(d.watchdog, true);
  t.same(d.dropped.map((x) => x.key), ['EXTEND_TIMEOUT_USEC']);
});

void t.test('malformed values are dropped with a reason', async (t) => {
  const d = filterContainerMessage(
    [
      ['READY', '0'],
      ['ERRNO', 'ENOENT'],
      ['EXTEND_TIMEOUT_USEC', '-5'],
      ['WATCHDOG', 'trigger'],
      ['RELOADING', '1'],
      ['STOPPING', 'yes'],
    ],
    'starting',
  );
  t.same(d.forward, []);
  t.equal(d.ready, false);
  t.equal(d.watchdog, false);
  t.same(
    d.dropped.map((x) => [x.key, x.reason]),
    [
      ['READY', "only 'READY=1' is defined"],
      ['ERRNO', 'expected a decimal errno number'],
      ['EXTEND_TIMEOUT_USEC', 'expected microseconds as a decimal number'],
      ['WATCHDOG', "only 'WATCHDOG=1' is relayed"],
      ['RELOADING', 'a reload cannot start while starting'],
      ['STOPPING', "only 'STOPPING=1' is defined"],
    ],
  );
});

void t.test('stopping: READY dropped, STATUS still relayed', async (t) => {
  const d = filterContainerMessage(
    [
      ['READY', '1'],
      ['STATUS', 'bye'],
    ],
    'stopping',
  );
  t.same(d.forward, [['STATUS', 'bye']]);
  t.equal(d.dropped[0]?.reason, 'the service is stopping');
});
