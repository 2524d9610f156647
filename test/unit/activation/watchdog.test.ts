import t from 'tap';
import { Watchdog, type WatchdogClock } from '../../../src/activation/watchdog.js';
import { recordLog } from './record-log.js';

/** A fake clock: `tick()` runs every interval timer once; `every` is the last interval asked for. */
function fakeClock(): { clock: WatchdogClock; tick(): void; timers(): number; every(): number | null } {
  const timers = new Map<number, () => void>();
  let id = 0;
  let every: number | null = null;
  return {
    clock: {
      setInterval: (fn, ms) => {
        every = ms;
        timers.set(++id, fn);
        return id;
      },
      clearInterval: (h) => void timers.delete(h as number),
    },
    tick: () => timers.forEach((fn) => fn()),
    timers: () => timers.size,
    every: () => every,
  };
}

void t.test('pings at half the interval until the container pings by itself; close() stops it', async (t) => {
  const { log } = recordLog();
  const c = fakeClock();
  const sent: Array<Array<[string, string]>> = [];
  const w = new Watchdog({ intervalMs: 10_000, notify: (f) => void sent.push(f), log, clock: c.clock });
  t.equal(c.timers(), 0, 'nothing before the container runs');
  w.start();
  w.start();
  t.equal(c.timers(), 1, 'one timer, however often started');
  t.equal(c.every(), 5000);
  c.tick();
  c.tick();
  t.same(sent, [[['WATCHDOG', '1']], [['WATCHDOG', '1']]]);
  w.containerPinged();
  t.equal(sent.length, 3, "the container's ping is passed on");
  c.tick();
  t.equal(sent.length, 3, 'no ping of its own once the container pings');
  w.close();
  w.close();
  t.equal(c.timers(), 0, 'close() clears the timer, and again is a no-op');
});

void t.test('a short interval is pinged at most every 100 ms', async (t) => {
  const { log } = recordLog();
  const c = fakeClock();
  const w = new Watchdog({ intervalMs: 50, notify: () => undefined, log, clock: c.clock });
  w.start();
  t.equal(c.every(), 100);
  w.close();
});

void t.test('no WatchdogSec=: no timer, nothing sent', async (t) => {
  const { log } = recordLog();
  const c = fakeClock();
  let pings = 0;
  const w = new Watchdog({ intervalMs: null, notify: () => pings++, log, clock: c.clock });
  w.start();
  w.containerPinged();
  t.equal(c.timers(), 0);
  t.equal(pings, 0);
  w.close();
});
