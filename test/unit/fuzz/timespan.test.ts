// Fuzzes parseTimespan() with strings from the time-span grammar (numbers, units, whitespace, signs,
// dots) mixed with random bytes: the only outcomes are a non-negative safe integer of milliseconds
// up to MAX_TIMESPAN_MS, null for 'infinity', or PodsockError('PODSOCK_ERR_TIMESPAN') naming the
// setting. And formatTimespan() output always parses back to the same number.
import t from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { formatTimespan, MAX_TIMESPAN_MS, parseTimespan } from '../../../src/config/timespan.js';
import { fuzzIterations, fuzzSeed, Rng, show } from './rng.js';

const SEED = fuzzSeed();
const N = fuzzIterations(20_000);
const MAX_CALL_MS = 2000;
const WHAT = 'IdleTimeout';

const NUMBERS = ['0', '1', '5', '9', '10', '90', '007', '1.5', '.5', '0.001', '+3', '2147483', '2147483647'];
const BAD_NUMBERS = ['5.', '1.2.3', '-1', '999999999999', '18446744073709551616', '2147483648', '1e3', ''];
const UNITS = ['', 's', 'sec', 'second', 'seconds', 'm', 'min', 'minute', 'minutes', 'ms', 'msec', 'h', 'hr', 'hour', 'hours',
  'd', 'day', 'days', 'w', 'week', 'weeks', 'M', 'month', 'months', 'y', 'year', 'years', 'us', 'usec', '\u00b5s', '\u03bcs'];
const BAD_UNITS = ['S', 'MIN', 'x', 'mi', 'ns', 'sec5', 'Ms'];
const SPACES = ['', '', ' ', '  ', '\t', '\n', '\r'];
/** Whitespace to JavaScript but not to systemd. */
const BAD_SPACES = ['\u00a0', '\u2003', '\v', '\f', '\ufeff'];
const NOISE = ['-', '+', '++', '.', 'e3', 'E', 'infinity', 'Infinity', 'inf', 'NaN', '0x10', '1_000', '\u0000', '\u0661', ',', ';'];

function grammar(r: Rng): string {
  const ws = (): string => (r.chance(0.03) ? r.pick(BAD_SPACES) : r.pick(SPACES));
  let s = ws();
  const parts = r.chance(0.5) ? 1 : r.range(2, 5);
  for (let i = 0; i < parts; i++) {
    if (r.chance(0.03)) s += r.pick(NOISE);
    s += (r.chance(0.05) ? r.pick(BAD_NUMBERS) : r.pick(NUMBERS)) + ws() + (r.chance(0.05) ? r.pick(BAD_UNITS) : r.pick(UNITS)) + ws();
  }
  if (r.chance(0.05)) s = `${ws()}infinity${ws()}${r.chance(0.3) ? r.pick(UNITS) : ''}`;
  return s;
}

function randomText(r: Rng): string {
  // Random bytes decoded leniently, as a config file's value could never be - but a flag could.
  return r.chance(0.5) ? r.bytes(r.int(40)).toString('latin1') : r.bytes(r.int(40)).toString('utf8');
}

/** What is wrong with parsing `text`, or null. Also returns the value for statistics. */
function check(text: string): { problem: string | null; value: number | null | 'error' } {
  let value: number | null;
  try {
    value = parseTimespan(text, WHAT);
  } catch (err) {
    if (!(err instanceof PodsockError)) return { problem: `threw a non-PodsockError: ${String(err)}`, value: 'error' };
    if (err.code !== 'PODSOCK_ERR_TIMESPAN') return { problem: `code ${err.code}`, value: 'error' };
    if (!err.message.includes(WHAT)) return { problem: `message does not name the setting: ${show(err.message)}`, value: 'error' };
    if (err.message.length > 600) return { problem: `message is ${err.message.length} characters`, value: 'error' };
    return { problem: null, value: 'error' };
  }
  if (value === null) return { problem: null, value };
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_TIMESPAN_MS) return { problem: `out of range: ${value}`, value };
  return { problem: null, value };
}

void t.test(`parseTimespan on grammar and random input (seed ${SEED}, ${N} inputs)`, async (t) => {
  const r = new Rng(SEED);
  const failures: string[] = [];
  let numbers = 0;
  let infinities = 0;
  let errors = 0;
  let maxMs = 0;
  for (let i = 0; i < N; i++) {
    const text = r.chance(0.8) ? grammar(r) : randomText(r);
    const start = performance.now();
    const { problem, value } = check(text);
    const ms = performance.now() - start;
    maxMs = Math.max(maxMs, ms);
    if (value === 'error') errors++;
    else if (value === null) infinities++;
    else numbers++;
    const p = problem ?? (ms > MAX_CALL_MS ? `took ${ms.toFixed(0)} ms` : null);
    if (p !== null && failures.length < 5) failures.push(`#${i}: ${p}; input ${show(text)}`);
  }
  t.comment(`numbers ${numbers}, infinity ${infinities}, errors ${errors}; slowest call ${maxMs.toFixed(2)} ms`);
  t.same(failures, [], `no failures (replay with PODSOCK_FUZZ_SEED=${SEED})`);
  t.ok(numbers > N / 10, `${numbers} parsed to a number`);
  t.ok(errors > N / 10, `${errors} rejected`);
  t.ok(infinities > 0, `${infinities} were infinity`);
  t.ok(maxMs < MAX_CALL_MS, `slowest call ${maxMs.toFixed(2)} ms`);
});

void t.test(`formatTimespan round-trips through parseTimespan (seed ${SEED})`, async (t) => {
  const r = new Rng(SEED ^ 0x5bd1e995);
  const failures: string[] = [];
  // Edges first, then random values spread over every magnitude (uniform would be almost all days).
  const values = [0, 1, 999, 1000, 1001, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000, 604_800_000, MAX_TIMESPAN_MS - 1, MAX_TIMESPAN_MS];
  const count = fuzzIterations(20_000);
  for (let i = 0; i < count; i++) values.push(Math.min(MAX_TIMESPAN_MS, Math.floor(r.next() * 10 ** r.range(0, 10))));
  for (const ms of values) {
    const text = formatTimespan(ms);
    let back: number | null | string;
    try {
      back = parseTimespan(text, WHAT);
    } catch (err) {
      back = `threw ${String(err)}`;
    }
    if (back !== ms && failures.length < 5) failures.push(`${ms} -> ${show(text)} -> ${String(back)}`);
  }
  t.same(failures, [], `every value round-trips (replay with PODSOCK_FUZZ_SEED=${SEED})`);
  t.equal(parseTimespan(formatTimespan(null), WHAT), null, 'infinity round-trips');
  t.equal(formatTimespan(5_400_000), '1h 30min');
  t.equal(formatTimespan(MAX_TIMESPAN_MS), '3w 3d 20h 31min 23s 647ms');
});

void t.test('spelling the same span in different ways gives the same value', async (t) => {
  const r = new Rng(SEED + 7);
  const failures: string[] = [];
  const count = Math.max(1, Math.floor(fuzzIterations(20_000) / 4));
  for (let i = 0; i < count; i++) {
    const h = r.int(24);
    const min = r.int(60);
    const s = r.int(60);
    const ms = r.int(1000);
    const expected = ((h * 60 + min) * 60 + s) * 1000 + ms;
    const ws = (): string => r.pick(['', ' ', '  ', '\t']);
    const spellings = [
      `${h}h${ws()}${min}min${ws()}${s}s${ws()}${ms}ms`,
      `${ws()}${h} hours ${min} minutes ${s} seconds ${ms} msec${ws()}`,
      `${ms}ms ${s}s ${min}m ${h}hr`,
      `${expected}ms`,
      `${expected / 1000}`,
      `${expected * 1000}us`,
    ];
    for (const text of spellings) {
      let got: number | null | string;
      try {
        got = parseTimespan(text, WHAT);
      } catch (err) {
        got = `threw ${String(err)}`;
      }
      if (got !== expected && failures.length < 5) failures.push(`${show(text)} gave ${String(got)}, expected ${expected}`);
    }
  }
  t.same(failures, [], `all spellings agree (replay with PODSOCK_FUZZ_SEED=${SEED})`);
});
