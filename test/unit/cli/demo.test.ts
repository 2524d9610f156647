import t from 'tap';
import { demoOptions } from '../../../src/cli/demo.js';
import { USAGE } from '../../../src/cli/usage.js';
import { isPodsockError } from '../../../src/errors.js';

void t.test('defaults', async (t) => {
  t.same(demoOptions([]), { port: null, idleMs: 3000, idleText: '3s', interactive: false, name: 'demo' });
});

void t.test('every option', async (t) => {
  t.same(demoOptions(['--port', '18080', '--idle-timeout=1min 30s', '--interactive', '--name', 'try-1']), {
    port: 18080,
    idleMs: 90_000,
    idleText: '1min 30s',
    interactive: true,
    name: 'try-1',
  });
  t.equal(demoOptions(['--idle-timeout', '500ms']).idleText, '500ms');
});

void t.test('bad command lines are PODSOCK_ERR_USAGE naming the value', async (t) => {
  const cases: Array<[string[], string]> = [
    [['--port', '0'], "--port expects a TCP port (1-65535), got '0'"],
    [['--port', '65536'], "got '65536'"],
    [['--port', '80a'], "got '80a'"],
    [['--idle-timeout', 'infinity'], "--idle-timeout must be a finite, non-zero time span, got 'infinity'"],
    [['--idle-timeout', '0'], "got '0'"],
    [['--name', 'Has Space'], "got 'Has Space'"],
    [['extra'], "unexpected argument 'extra'"],
    [['--', 'x'], "unexpected argument '--'"],
    [['--nope'], "unknown option '--nope'"],
  ];
  for (const [argv, msg] of cases) {
    let caught: unknown;
    try {
      demoOptions(argv);
    } catch (err) {
      caught = err;
    }
    t.ok(isPodsockError(caught, 'PODSOCK_ERR_USAGE'), `${argv.join(' ')}: PODSOCK_ERR_USAGE`);
    t.match((caught as Error).message, msg);
  }
  let caught: unknown;
  try {
    demoOptions(['--idle-timeout', '3 parsecs']);
  } catch (err) {
    caught = err;
  }
  t.ok(isPodsockError(caught, 'PODSOCK_ERR_TIMESPAN'), 'a malformed span is the time span error');
});

void t.test('the help text names every option the parser takes', async (t) => {
  for (const opt of ['--port', '--idle-timeout', '--interactive', '--name', '--help']) t.match(USAGE.demo, opt);
  t.match(USAGE.main, /^ {2}demo {11}Show lazy start and idle stop on a built-in example$/m);
});
