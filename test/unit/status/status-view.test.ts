/** What `podsock status` makes of a record: the JSON view (alive or not) and the human table. */
import t from 'tap';
import { formatStatusTable, viewOf } from '../../../src/status/status-view.js';
import { sample } from '../../helpers/status-sample.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

void t.test('a live record shows as recorded', async (t) => {
  const v = viewOf(sample({ since: T0, updatedAt: T0 + 1000, idleDeadline: null }), 'user', '/s/web.status', true);
  t.same(v, {
    name: 'web',
    scope: 'user',
    file: '/s/web.status',
    mode: 'proxy',
    sockets: ['fd 3 (TCP 127.0.0.1:8080)'],
    state: 'ready',
    running: true,
    pid: 4242,
    since: '2026-01-02T03:04:05.000Z',
    lastColdStartMs: 812,
    usualColdStartMs: 856,
    active: 2,
    idleTimeoutMs: 30_000,
    idleDeadline: null,
    consecutiveFailures: 0,
    lastError: null,
    lastErrorAt: null,
    image: 'localhost/web:1',
    updatedAt: '2026-01-02T03:04:06.000Z',
  });
});

void t.test('a record whose podsock is gone shows as stopped, whatever the file says', async (t) => {
  const v = viewOf(sample({ since: T0, updatedAt: T0 + 5000, active: 3, idleDeadline: T0 + 9000 }), 'system', '/s/web.status', false);
  t.match(v, { state: 'stopped', running: false, pid: null, active: 0, idleDeadline: null, since: new Date(T0 + 5000).toISOString(), lastColdStartMs: 812 });
  const failed = viewOf(sample({ state: 'failed', consecutiveFailures: 2, lastError: 'boom', lastErrorAt: T0 }), 'system', 'f', false);
  t.match(failed, { state: 'failed', running: false, consecutiveFailures: 2, lastError: 'boom' }, 'a final state stays');
  t.match(viewOf(sample({ state: 'waiting' }), 'user', 'f', true), { state: 'waiting', running: false, pid: 4242 }, 'standalone, waiting: podsock runs, the container does not');
});

void t.test('the table', async (t) => {
  const running = viewOf(sample({ since: T0, idleDeadline: null }), 'user', 'f', true);
  const idle = viewOf(sample({ name: 'api', mode: 'handover', since: T0, active: 0, idleDeadline: T0 + 150_000, image: 'localhost/api:2' }), 'system', 'f', true);
  const failed = viewOf(sample({ name: 'db', state: 'failed', since: T0, consecutiveFailures: 3, lastError: "Container 'podsock-db' exited with code 1\nbefore it was ready", lastColdStartMs: null }), 'system', 'f', false);
  const table = formatStatusTable([running, idle, failed], T0 + 125_000);
  const lines = table.split('\n');
  t.match(lines[0], /^NAME +SCOPE +MODE +SOCKETS +STATE +SINCE +COLD START +ACTIVE +IDLE STOP +FAILURES +LAST ERROR +IMAGE$/);
  t.match(lines[1], /^web +user +proxy +fd 3 \(TCP 127\.0\.0\.1:8080\) +running \(pid 4242\) +2min 5s ago +812ms +2 +- +0 +- +localhost\/web:1$/);
  t.match(lines[2], /^api +system +handover +.* +running \(pid 4242\) +2min 5s ago +812ms +0 +in 25s +0 +- +localhost\/api:2$/);
  t.match(lines[3], /^db +system +proxy +.* +failed +2min 5s ago +- +- +- +3 +Container 'podsock-db' exited with code 1 before it was r\.\.\. +localhost\/web:1$/);
  t.equal(lines[4], '');
  const header = lines[0] ?? '';
  for (const [col, value] of [['SCOPE', /^(user|system) /], ['STATE', /^(running|failed) /], ['IMAGE', /^localhost\//]] as const) {
    t.ok(lines.slice(1, 4).every((l) => value.test(l.slice(header.indexOf(col)))), `column ${col} aligned`);
  }
});
