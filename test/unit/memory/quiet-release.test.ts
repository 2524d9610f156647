import t from 'tap';
import { QuietRelease } from '../../../src/memory/quiet-release.js';

/** A fake clock: timers run when the test advances time. */
function fakeClock(): { clock: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(h: unknown): void }; advance(ms: number): void; pending(): number } {
  let now = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let id = 0;
  return {
    clock: {
      setTimeout: (fn, ms) => {
        timers.set(++id, { at: now + ms, fn });
        return id;
      },
      clearTimeout: (h) => void timers.delete(h as number),
    },
    advance(ms) {
      now += ms;
      for (const [k, v] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (v.at <= now) {
          timers.delete(k);
          v.fn();
        }
      }
    },
    pending: () => timers.size,
  };
}

void t.test('releases once per quiet period: the first after start-up, then after each burst', async (t) => {
  const c = fakeClock();
  let released = 0;
  const q = new QuietRelease({ quietMs: 5000, release: () => released++, clock: c.clock });
  t.equal(q.state, 'busy');
  q.activity(1); // the first request, still open when the service became ready
  c.advance(60_000);
  t.equal(released, 0, 'nothing while a connection is open');
  q.activity(0);
  t.equal(q.state, 'waiting');
  c.advance(4999);
  t.equal(released, 0);
  c.advance(1);
  t.equal(released, 1, 'start-up memory goes after the first quiet period');
  t.equal(q.state, 'released');
  q.activity(0);
  t.equal(c.pending(), 0, 'quiet without activity: nothing to wait for');
  q.activity(2);
  t.equal(q.state, 'busy');
  q.activity(0);
  c.advance(4999);
  q.activity(1); // a connection within the quiet time cancels it
  c.advance(10_000);
  t.equal(released, 1);
  q.activity(0);
  c.advance(5000);
  t.equal(released, 2);
  c.advance(60_000);
  t.equal(released, 2, 'no second release without activity');
});

void t.test('close cancels a pending release and ignores later activity', async (t) => {
  const c = fakeClock();
  let released = 0;
  const q = new QuietRelease({ quietMs: 100, release: () => released++, clock: c.clock });
  q.activity(1);
  q.activity(0);
  q.close();
  c.advance(1000);
  q.activity(1);
  q.activity(0);
  c.advance(1000);
  t.equal(released, 0);
  t.equal(q.state, 'closed');
});
