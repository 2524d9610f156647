/**
 * The status recorder with an injected clock and writer: every event is written at once, the active
 * count at most once per WRITE_INTERVAL_MS with the last count written at the end of the interval, no
 * timer while nothing changes, and what carries over from the previous record.
 */
import { join } from 'node:path';
import t from 'tap';
import { readStatusFile, writeStatusFile } from '../../../src/status/status-file.js';
import type { StatusRecord } from '../../../src/status/status-record.js';
import { StatusRecorder, WRITE_INTERVAL_MS, type RecorderClock, type StatusRecorderOptions } from '../../../src/status/status-recorder.js';
import { tmpDir } from '../../helpers/tmp-dir.js';
import { sample } from '../../helpers/status-sample.js';

/** A clock whose time moves only when the test says, with the timers it was asked for. */
class FakeClock implements RecorderClock {
  t = 1_000_000;
  timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  advance(ms: number): void {
    this.t += ms;
    for (const [id, tm] of [...this.timers]) {
      if (tm.at <= this.t) {
        this.timers.delete(id);
        tm.fn();
      }
    }
  }
}

function recorder(over: Partial<StatusRecorderOptions> = {}): { r: StatusRecorder; clock: FakeClock; writes: StatusRecord[]; errors: unknown[] } {
  const clock = new FakeClock();
  const writes: StatusRecord[] = [];
  const errors: unknown[] = [];
  const r = new StatusRecorder({
    file: '/nonexistent/web.status',
    name: 'web',
    mode: 'proxy',
    sockets: ['fd 3'],
    image: 'img',
    idleTimeoutMs: 30_000,
    pid: 77,
    pidStart: '999',
    onError: (e) => errors.push(e),
    clock,
    write: (_f, rec) => writes.push(rec),
    read: () => null,
    ...over,
  });
  return { r, clock, writes, errors };
}

void t.test('starting, ready with the cold start, stopping, stopped: each written at once', async (t) => {
  const { r, clock, writes } = recorder();
  r.starting();
  clock.advance(812);
  r.ready(812, 1);
  clock.advance(5000);
  r.stopping();
  r.ended(null, 0);
  t.same(writes.map((w) => w.state), ['starting', 'ready', 'stopping', 'stopped']);
  const ready = writes[1] as StatusRecord;
  t.equal(ready.lastColdStartMs, 812);
  t.same(ready.coldStartsMs, [812]);
  t.equal(ready.active, 1);
  t.equal(ready.idleDeadline, null, 'busy: the idle timer is not armed');
  t.equal(ready.since, 1_000_812);
  t.equal(writes[3]?.lastColdStartMs, 812, 'the last cold start stays after the stop');
  t.equal(clock.timers.size, 0, 'no timer left');
});

void t.test('the active count is throttled to one write per interval, the last count written', async (t) => {
  const { r, clock, writes } = recorder();
  r.ready(500, 0);
  t.equal(writes.at(-1)?.idleDeadline, clock.t + 30_000, 'idle: the deadline is now + IdleTimeout');
  const before = writes.length;
  for (let i = 1; i <= 50; i++) {
    clock.advance(10);
    r.activity(i % 7);
  }
  t.equal(writes.length, before, 'within the interval after the last write: nothing written yet');
  t.equal(clock.timers.size, 1, 'one timer for the rest of the interval, not one per change');
  clock.advance(WRITE_INTERVAL_MS);
  t.equal(writes.length, before + 1, 'one write at the end of the interval');
  t.equal(writes.at(-1)?.active, 50 % 7, 'with the last count');
  t.equal(writes.at(-1)?.idleDeadline, null, 'busy: no deadline');
  t.equal(clock.timers.size, 0, 'and no timer while nothing changes');
  clock.advance(10 * WRITE_INTERVAL_MS);
  r.activity(0);
  t.equal(writes.length, before + 2, 'a change long after the last write is written at once');
  t.equal(writes.at(-1)?.idleDeadline, clock.t + 30_000, 'the idle timer armed: its deadline');
  r.activity(0);
  t.equal(writes.length, before + 2, 'the same count again: nothing');
  clock.advance(100);
  r.activity(3);
  r.stopping();
  t.equal(clock.timers.size, 0, 'an event written at once takes the pending count with it');
  t.equal(writes.at(-1)?.active, 3);
});

void t.test('a failure: the error and the consecutive-failure count; null keeps the count', async (t) => {
  const { r, writes } = recorder();
  r.starting();
  r.ended("Container 'x' was not ready within StartTimeout=5s", 3);
  t.match(writes.at(-1), { state: 'failed', consecutiveFailures: 3, lastError: "Container 'x' was not ready within StartTimeout=5s", lastErrorAt: 1_000_000 });
  const kept = recorder({ read: () => sample({ consecutiveFailures: 4 }) });
  kept.r.ended('boom', null);
  t.equal(kept.writes.at(-1)?.consecutiveFailures, 4);
});

void t.test('the previous record carries the cold-start history and the failures over', async (t) => {
  const { r, writes } = recorder({ read: () => sample({ coldStartsMs: [1, 2, 3, 4, 5, 6, 7, 8], lastColdStartMs: 8, consecutiveFailures: 2, lastError: 'old' }) });
  r.starting();
  t.match(writes[0], { lastColdStartMs: 8, consecutiveFailures: 2, lastError: 'old', pid: 77, state: 'starting', active: 0 });
  r.ready(9, 0);
  t.same(writes[1]?.coldStartsMs, [2, 3, 4, 5, 6, 7, 8, 9], 'at most 8 kept, oldest dropped');
  const corrupt = recorder({
    read: () => {
      throw new Error('corrupt');
    },
  });
  corrupt.r.starting();
  t.equal(corrupt.writes[0]?.lastColdStartMs, null, 'a corrupt previous record is replaced');
});

void t.test('a write that fails is reported once and never thrown', async (t) => {
  const { r, errors } = recorder({
    write: () => {
      throw new Error('EROFS');
    },
  });
  r.starting();
  r.ready(1, 0);
  r.ended(null, 0);
  t.equal(errors.length, 1);
});

void t.test('with the real file', async (t) => {
  const file = join(tmpDir(t, 'podsock-sr-'), 'podsock', 'state', 'web.status');
  const first = new StatusRecorder({ file, name: 'web', mode: 'handover', sockets: [], image: 'img', idleTimeoutMs: null, pid: process.pid, pidStart: null, onError: (e) => t.fail(String(e)) });
  first.starting();
  first.ready(700, 0);
  t.equal(readStatusFile(file)?.idleDeadline, null, 'IdleTimeout=infinity: no deadline');
  first.ended(null, 0);
  const second = new StatusRecorder({ file, name: 'web', mode: 'handover', sockets: [], image: 'img', idleTimeoutMs: null, pid: process.pid, pidStart: null, onError: (e) => t.fail(String(e)) });
  second.starting();
  t.match(readStatusFile(file), { state: 'starting', lastColdStartMs: 700, coldStartsMs: [700] });
  writeStatusFile(file, sample());
});
