import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { DemoEvent } from '../../../src/demo/narrate.js';
import { PodsockChild } from '../../../src/demo/podsock-child.js';
import { isPodsockError } from '../../../src/errors.js';

/**
 * A stand-in for `podsock run`: a real process that writes the given stderr lines (JSON records or
 * anything else) and stdout lines, then behaves as told on SIGTERM.
 */
function fakePodsock(dir: string, script: string): string {
  const file = join(dir, 'fake-main.mjs');
  writeFileSync(file, script);
  return file;
}

const rec = (level: number, msg: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ level, time: 1, pid: 1, msg, ...extra });

function start(t: Test, main: string, events: DemoEvent[]): PodsockChild {
  const child = new PodsockChild({ node: process.execPath, main, args: ['run', 'x'], env: { PATH: process.env.PATH ?? '' }, onEvent: (ev) => events.push(ev) });
  t.teardown(() => child.stop(5_000).then(() => undefined));
  return child;
}

void t.test('events arrive in order, to onEvent and to next(); SIGTERM ends it', async (t) => {
  const lines = [
    rec(30, 'Waiting for the first connection'),
    'container output, not JSON',
    rec(20, 'Starting podman', { argv: 'podman run x' }),
    rec(30, "Container 'podsock-x' ready", { ms: 42 }),
  ];
  const main = fakePodsock(
    t.testdir({}),
    `process.stderr.write(${JSON.stringify(lines.join('\n') + '\n')});
     process.stdout.write('stdout line\\n');
     process.on('SIGTERM', () => { process.stderr.write(${JSON.stringify(rec(30, 'Stopping', { reason: 'SIGTERM' }) + '\n')}); process.exit(0); });
     setInterval(() => {}, 1000);`,
  );
  const events: DemoEvent[] = [];
  const child = start(t, main, events);
  t.same(await child.next('listening', 10_000, 'listening'), { kind: 'listening' });
  t.same(await child.next('ready', 10_000, 'ready'), { kind: 'ready', ms: 42 }, "skips the queued 'starting'");
  t.same(await child.stop(10_000), { code: 0, signal: null });
  t.same(events, [{ kind: 'listening' }, { kind: 'starting' }, { kind: 'ready', ms: 42 }, { kind: 'stopping' }]);
  t.same(await child.stop(10_000), { code: 0, signal: null }, 'stop is idempotent');
});

void t.test('an exit before the awaited event rejects with PODSOCK_ERR_DEMO and says why', async (t) => {
  const main = fakePodsock(
    t.testdir({}),
    `process.stderr.write(${JSON.stringify(rec(50, "Failed to start container 'podsock-x': podman exited with 125") + '\n')});
     process.stderr.write('Error: short-name resolution enforced\\n');
     process.exit(69);`,
  );
  const child = start(t, main, []);
  let caught: unknown;
  try {
    await child.next('listening', 10_000, 'podsock to listen');
  } catch (err) {
    caught = err;
  }
  t.ok(isPodsockError(caught, 'PODSOCK_ERR_DEMO'));
  t.match((caught as Error).message, /^podsock \(pid '\d+'\) exited with status 69 /);
  t.match((caught as Error).message, "podsock said: Failed to start container 'podsock-x': podman exited with 125");
  t.match((caught as Error).message, 'Error: short-name resolution enforced');
  t.same(await child.exited, { code: 69, signal: null });
});

void t.test('next() gives up after its timeout; stop() kills a podsock that ignores SIGTERM', async (t) => {
  const main = fakePodsock(
    t.testdir({}),
    `process.on('SIGTERM', () => {});
     process.stderr.write(${JSON.stringify(rec(30, 'Waiting for the first connection') + '\n')});
     setInterval(() => {}, 1000);`,
  );
  const child = start(t, main, []);
  await child.next('listening', 10_000, 'the SIGTERM handler to be in place');
  let caught: unknown;
  try {
    await child.next('idle', 300, 'the idle stop');
  } catch (err) {
    caught = err;
  }
  t.ok(isPodsockError(caught, 'PODSOCK_ERR_DEMO'));
  t.equal((caught as Error).message, 'Gave up after 300 ms waiting for the idle stop');
  t.same(await child.stop(500), { code: null, signal: 'SIGKILL' });
});

void t.test('over-long lines are skipped whole, split lines are joined', async (t) => {
  const long = 'x'.repeat(70 * 1024);
  const first = rec(30, 'Waiting for the first connection');
  const main = fakePodsock(
    t.testdir({}),
    `const parts = [${JSON.stringify(first.slice(0, 10))}, ${JSON.stringify(first.slice(10) + '\n')}, ${JSON.stringify(long)}, ${JSON.stringify(long + rec(30, 'Stopping') + '\n')}, ${JSON.stringify(rec(30, 'Idle for 3s: stopping') + '\n')}];
     let i = 0;
     const next = () => { if (i < parts.length) process.stderr.write(parts[i++], () => setTimeout(next, 20)); };
     next();
     setInterval(() => {}, 1000);`,
  );
  const events: DemoEvent[] = [];
  const child = start(t, main, events);
  await child.next('idle', 10_000, 'idle');
  t.same(events, [{ kind: 'listening' }, { kind: 'idle' }], "the record glued to the long line's end is dropped with it");
});
