import t from 'tap';
import { IdleTimer, type IdleClock } from '../../../src/idle/idle-timer.js';

/** A manual clock: timers fire only when the test advances time. */
class FakeClock implements IdleClock {
  now = 0;
  #next = 1;
  readonly timers = new Map<number, { at: number; fn: () => void; ms: number }>();
  readonly scheduled: number[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timers.set(id, { at: this.now + ms, fn, ms });
    this.scheduled.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!first || entry[1].at < first[1].at)) first = entry;
      if (!first) break;
      this.timers.delete(first[0]);
      this.now = first[1].at;
      first[1].fn();
    }
    this.now = end;
  }
}

function setup(timeoutMs: number | null) {
  const clock = new FakeClock();
  let fired = 0;
  const timer = new IdleTimer({ timeoutMs, clock, onIdle: () => fired++ });
  return { clock, timer, fired: () => fired };
}

void t.test('starts busy and does nothing until armed', async (t) => {
  const { clock, timer, fired } = setup(1000);
  t.equal(timer.state, 'busy');
  clock.advance(10_000);
  t.equal(fired(), 0);
  t.equal(clock.timers.size, 0);
});

void t.test('arm at startup fires after the timeout, exactly once', async (t) => {
  const { clock, timer, fired } = setup(1000);
  timer.arm();
  t.equal(timer.state, 'armed');
  clock.advance(999);
  t.equal(fired(), 0);
  clock.advance(1);
  t.equal(fired(), 1);
  t.equal(timer.state, 'fired');
  clock.advance(10_000);
  t.equal(fired(), 1);
});

void t.test('activity > 0 disarms; activity(0) re-arms with a full timeout', async (t) => {
  const { clock, timer, fired } = setup(1000);
  timer.arm();
  clock.advance(900);
  timer.activity(1);
  t.equal(timer.state, 'busy');
  t.equal(clock.timers.size, 0);
  clock.advance(5000);
  t.equal(fired(), 0);
  timer.activity(3);
  t.equal(timer.state, 'busy');
  timer.activity(0);
  t.equal(timer.state, 'armed');
  clock.advance(999);
  t.equal(fired(), 0);
  clock.advance(1);
  t.equal(fired(), 1);
  t.equal(timer.state, 'fired');
});

void t.test('arming an armed timer keeps the original deadline', async (t) => {
  const { clock, timer, fired } = setup(1000);
  timer.arm();
  clock.advance(600);
  timer.activity(0);
  timer.arm();
  t.equal(clock.timers.size, 1);
  clock.advance(400);
  t.equal(fired(), 1);
});

void t.test('after firing, activity and arm are ignored', async (t) => {
  const { clock, timer, fired } = setup(10);
  timer.arm();
  clock.advance(10);
  t.equal(timer.state, 'fired');
  timer.activity(2);
  t.equal(timer.state, 'fired');
  timer.activity(0);
  timer.arm();
  timer.disarm();
  t.equal(timer.state, 'fired');
  t.equal(clock.timers.size, 0);
  clock.advance(100);
  t.equal(fired(), 1);
  timer.close();
  t.equal(timer.state, 'closed');
});

void t.test('close cancels a pending countdown and is idempotent', async (t) => {
  const { clock, timer, fired } = setup(1000);
  timer.arm();
  timer.close();
  t.equal(timer.state, 'closed');
  t.equal(clock.timers.size, 0);
  timer.close();
  timer.arm();
  timer.activity(0);
  t.equal(timer.state, 'closed');
  clock.advance(5000);
  t.equal(fired(), 0);
});

void t.test('disarm when busy is a no-op', async (t) => {
  const { timer } = setup(1000);
  timer.disarm();
  t.equal(timer.state, 'busy');
});

void t.test('timeoutMs null: moves between states, never fires, schedules nothing', async (t) => {
  const { clock, timer, fired } = setup(null);
  timer.arm();
  t.equal(timer.state, 'armed');
  t.equal(clock.timers.size, 0);
  timer.activity(1);
  t.equal(timer.state, 'busy');
  timer.activity(0);
  t.equal(timer.state, 'armed');
  clock.advance(Number.MAX_SAFE_INTEGER);
  t.equal(fired(), 0);
});

void t.test('timeout 0 fires on the next turn of the clock', async (t) => {
  const { clock, timer, fired } = setup(0);
  timer.arm();
  t.equal(fired(), 0);
  clock.advance(0);
  t.equal(fired(), 1);
});

void t.test('timeouts beyond the setTimeout range are scheduled in chunks', async (t) => {
  const max = 2_147_483_647;
  const { clock, timer, fired } = setup(max * 2 + 5);
  timer.arm();
  clock.advance(max);
  t.equal(fired(), 0);
  clock.advance(max);
  t.equal(fired(), 0);
  clock.advance(4);
  t.equal(fired(), 0);
  clock.advance(1);
  t.equal(fired(), 1);
  t.same(clock.scheduled, [max, max, 5]);
});

void t.test('a late callback of a cancelled countdown does not fire', async (t) => {
  const clock = new FakeClock();
  let fired = 0;
  // A clock whose clearTimeout does not work: the stale callback must be ignored.
  const leaky: IdleClock = { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: () => {} };
  const timer = new IdleTimer({ timeoutMs: 1000, clock: leaky, onIdle: () => fired++ });
  timer.arm();
  clock.advance(500);
  timer.activity(1);
  timer.activity(0);
  clock.advance(500);
  t.equal(fired, 0, 'the first countdown was cancelled');
  clock.advance(500);
  t.equal(fired, 1);
});

void t.test('a real clock is used by default', async (t) => {
  await new Promise<void>((resolve) => {
    const timer = new IdleTimer({ timeoutMs: 5, onIdle: resolve });
    timer.arm();
  });
  t.pass('fired with real timers');
});

void t.test('rejects invalid timeouts and counts', async (t) => {
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new IdleTimer({ timeoutMs: bad, onIdle: () => {} }), { name: 'PodsockError', code: 'PODSOCK_ERR_INTERNAL' });
  }
  const { timer } = setup(10);
  for (const bad of [-1, 1.5, Number.NaN]) {
    t.throws(() => timer.activity(bad), { name: 'PodsockError', code: 'PODSOCK_ERR_INTERNAL' });
  }
});
