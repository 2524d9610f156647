import t from 'tap';
import {
  DEFAULT_BACKOFF,
  abortable,
  jittered,
  nextDelay,
  pollUntil,
  resolveBackoff,
  sleep,
} from '../../../src/readiness/backoff.js';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

void t.test('resolveBackoff fills defaults and freezes', async (t) => {
  t.same(resolveBackoff(), { initialMs: 5, maxMs: 50, factor: 1.25, jitter: 0 });
  t.same(resolveBackoff({ initialMs: 40, maxMs: undefined }), { initialMs: 40, maxMs: 50, factor: 1.25, jitter: 0 });
  t.ok(Object.isFrozen(resolveBackoff()));
  t.ok(Object.isFrozen(DEFAULT_BACKOFF));
});

void t.test('resolveBackoff rejects nonsense with a message naming the option and value', async (t) => {
  const cases: Array<[Parameters<typeof resolveBackoff>[0], string]> = [
    [{ initialMs: 0 }, 'Expected the `initialMs` backoff option to be a positive number, got `0` (number)'],
    [{ initialMs: NaN }, 'Expected the `initialMs` backoff option to be a positive number, got `NaN` (number)'],
    [{ initialMs: 100, maxMs: 50 }, 'Expected the `maxMs` backoff option to be a number of at least initialMs (100), got `50` (number)'],
    [{ maxMs: Infinity }, 'Expected the `maxMs` backoff option to be a number of at least initialMs (5), got `Infinity` (number)'],
    [{ factor: 0.5 }, 'Expected the `factor` backoff option to be a number of at least 1, got `0.5` (number)'],
    [{ jitter: 2 }, 'Expected the `jitter` backoff option to be a number from 0 to 1, got `2` (number)'],
  ];
  for (const [options, message] of cases) {
    t.throws(() => resolveBackoff(options), { code: 'PODSOCK_ERR_INTERNAL', message });
  }
});

void t.test('nextDelay grows by factor up to the cap', async (t) => {
  const b = resolveBackoff();
  const seq = [b.initialMs];
  for (let i = 0; i < 6; i++) seq.push(nextDelay(seq[seq.length - 1]!, b));
  t.same(seq, [5, 6.25, 7.8125, 9.765625, 12.20703125, 15.2587890625, 19.073486328125]);
  t.equal(nextDelay(100, resolveBackoff({ factor: 1, initialMs: 100, maxMs: 500 })), 100, 'factor 1 is constant');
});

void t.test('jittered removes up to jitter of the delay', async (t) => {
  t.equal(jittered(500, 0.2, () => 0), 500);
  t.equal(jittered(500, 0.2, () => 0.5), 450);
  t.equal(jittered(500, 0, () => 0.99), 500);
});

void t.test('sleep resolves after the delay and leaves no timer', async (t) => {
  const before = timers();
  const start = Date.now();
  await sleep(50, new AbortController().signal);
  t.ok(Date.now() - start >= 45, 'waited');
  t.equal(timers(), before);
});

void t.test('sleep rejects with the abort reason at once and clears its timer', async (t) => {
  const before = timers();
  const ac = new AbortController();
  const reason = new Error('stop');
  const p = sleep(60_000, ac.signal);
  t.equal(timers(), before + 1);
  const start = Date.now();
  setImmediate(() => ac.abort(reason));
  await t.rejects(p, reason);
  t.ok(Date.now() - start < 1000, 'promptly');
  t.equal(timers(), before, 'timer cleared');
  await t.rejects(sleep(10, ac.signal), reason, 'an aborted signal rejects at once');
});

void t.test('abortable settles like the promise, or with the reason on abort', async (t) => {
  const ac = new AbortController();
  t.equal(await abortable(Promise.resolve(7), ac.signal), 7);
  await t.rejects(abortable(Promise.reject(new Error('boom')), ac.signal), { message: 'boom' });
  let rejectLater!: (err: Error) => void;
  const never = new Promise<number>((_resolve, reject) => {
    rejectLater = reject;
  });
  const p = abortable(never, ac.signal);
  ac.abort(new Error('gone'));
  await t.rejects(p, { message: 'gone' });
  rejectLater(new Error('late')); // must not become an unhandled rejection (tap would fail the file)
  await new Promise((resolve) => setImmediate(resolve));
});

void t.test('pollUntil retries until an attempt succeeds, with growing delays', async (t) => {
  const calls: number[] = [];
  const start = Date.now();
  await pollUntil(
    async () => {
      calls.push(Date.now() - start);
      return calls.length === 4;
    },
    { signal: new AbortController().signal, backoff: { initialMs: 20, maxMs: 40, factor: 2 } },
  );
  t.equal(calls.length, 4);
  // Delays 20, 40, 40 (capped): at least 100 ms in all; generous upper bound for a noisy machine.
  t.ok(calls[3]! >= 95, `last attempt at ${calls[3]} ms`);
  t.ok(calls[3]! < 5000);
});

void t.test('pollUntil passes the signal to attempts and stops on an attempt error', async (t) => {
  const ac = new AbortController();
  let seen: AbortSignal | undefined;
  await t.rejects(
    pollUntil(
      async (signal) => {
        seen = signal;
        throw new Error('permanent');
      },
      { signal: ac.signal },
    ),
    { message: 'permanent' },
  );
  t.equal(seen, ac.signal);
});

void t.test('pollUntil rejects with the reason when aborted during an attempt or a sleep', async (t) => {
  const before = timers();
  const ac = new AbortController();
  const reason = new Error('deadline');
  const hung = pollUntil(() => new Promise<boolean>(() => {}), { signal: ac.signal });
  setTimeout(() => ac.abort(reason), 20);
  await t.rejects(hung, reason, 'during a hung attempt');

  const ac2 = new AbortController();
  let attempts = 0;
  const sleeping = pollUntil(
    async () => {
      attempts++;
      return false;
    },
    { signal: ac2.signal, backoff: { initialMs: 60_000, maxMs: 60_000 } },
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  ac2.abort(reason);
  await t.rejects(sleeping, reason, 'during the backoff sleep');
  t.equal(attempts, 1);
  t.equal(timers(), before, 'no timer left');

  let called = false;
  await t.rejects(
    pollUntil(
      async () => {
        called = true;
        return true;
      },
      { signal: AbortSignal.abort(reason) },
    ),
    reason,
  );
  t.notOk(called, 'an aborted signal means no attempt at all');
});
