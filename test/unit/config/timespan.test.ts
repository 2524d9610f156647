import t from 'tap';
import { MAX_TIMESPAN_MS, formatTimespan, parseTimespan } from '../../../src/config/timespan.js';
import { caught } from '../../helpers/caught.js';

void t.test('valid spans, in milliseconds', async (t) => {
  const table: Array<[string, number | null]> = [
    ['90', 90_000],
    ['90s', 90_000],
    ['0', 0],
    ['0s', 0],
    ['5min', 300_000],
    ['1h 30min', 5_400_000],
    ['1h30min', 5_400_000],
    ['2min30s', 150_000],
    ['2min 30s', 150_000],
    ['500ms', 500],
    ['100us', 1], // rounded up, never down to 0
    ['1000us', 1],
    ['1001us', 2],
    ['1usec', 1],
    ['1\u00b5s', 1], // micro sign
    ['1\u03bcs', 1], // Greek mu
    ['1msec', 1],
    ['1 ms', 1],
    ['1s', 1000],
    ['1sec', 1000],
    ['1second', 1000],
    ['2seconds', 2000],
    ['1m', 60_000],
    ['1min', 60_000],
    ['1minute', 60_000],
    ['2minutes', 120_000],
    ['1h', 3_600_000],
    ['1hr', 3_600_000],
    ['1hour', 3_600_000],
    ['2hours', 7_200_000],
    ['1d', 86_400_000],
    ['1day', 86_400_000],
    ['2days', 172_800_000],
    ['1w', 604_800_000],
    ['1week', 604_800_000],
    ['2weeks', 1_209_600_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['1.5', 1500],
    ['0.25h', 900_000],
    ['12.34 .56', 12_900],
    ['1 2', 3000], // two unitless parts, as parse_time() accepts
    ['  5min  ', 300_000],
    ['\t5min\n', 300_000],
    ['+5s', 5000],
    ['infinity', null],
    ['  infinity  ', null],
    ['24d', 2_073_600_000],
    ['3w 3d 20h 31min 23s 647ms', MAX_TIMESPAN_MS],
  ];
  for (const [text, want] of table) t.equal(parseTimespan(text, 'X'), want, JSON.stringify(text));
});

void t.test('1.0001ms is 1000us after truncation, so exactly 1ms', async (t) => {
  // 1ms = 1000us; .0001ms = 0.1us, truncated to 0 as systemd does digit by digit.
  t.equal(parseTimespan('1.0001ms', 'X'), 1);
});

void t.test('invalid spans: exact message naming the setting', async (t) => {
  const bad = ['', ' ', '-1', '-0', '5.', '5x', '5 x', '12.34.56', 's', 'min', '1h x', 'infinityx', 'infinity 5',
    '5secs', '1.sec', '1. 5', 'five', '0x10', '1e3', '5 5x', 'Infinity', '1H', '1S', '1Min'];
  for (const text of bad) {
    const err = caught(() => parseTimespan(text, 'IdleTimeout'));
    t.equal(err.code, 'PODSOCK_ERR_TIMESPAN', JSON.stringify(text));
    t.equal(
      err.message,
      `Invalid time span for IdleTimeout: '${text}' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`,
      JSON.stringify(text),
    );
  }
});

void t.test('"M" is months and "m" minutes, as in systemd', async (t) => {
  t.equal(parseTimespan('1m', 'X'), 60_000);
  const err = caught(() => parseTimespan('1M', 'X'));
  t.equal(err.code, 'PODSOCK_ERR_TIMESPAN');
  t.match(err.message, /too large/);
});

void t.test('spans above what setTimeout() honours are refused', async (t) => {
  t.equal(parseTimespan(`${MAX_TIMESPAN_MS}ms`, 'X'), MAX_TIMESPAN_MS);
  for (const text of [`${MAX_TIMESPAN_MS + 1}ms`, '25d', '1y', '1month', '99999999999999999999999999999999s']) {
    const err = caught(() => parseTimespan(text, '--start-timeout'));
    t.equal(err.code, 'PODSOCK_ERR_TIMESPAN');
    t.equal(
      err.message,
      `Time span for --start-timeout is too large: '${text}' (at most '3w 3d 20h 31min 23s 647ms'; use 'infinity' for no limit)`,
    );
  }
});

void t.test('overlong input is refused before parsing', async (t) => {
  const err = caught(() => parseTimespan('1'.repeat(300), 'X'));
  t.equal(err.code, 'PODSOCK_ERR_TIMESPAN');
  t.match(err.message, /longer than 256 characters/);
});

void t.test('formatTimespan', async (t) => {
  const table: Array<[number | null, string]> = [
    [null, 'infinity'],
    [0, '0'],
    [1, '1ms'],
    [500, '500ms'],
    [1000, '1s'],
    [90_000, '1min 30s'],
    [5_400_000, '1h 30min'],
    [300_000, '5min'],
    [86_400_000 + 1, '1d 1ms'],
    [604_800_000, '1w'],
    [31_557_600_000, '1y'],
    [2_629_800_000, '1month'],
  ];
  for (const [ms, want] of table) t.equal(formatTimespan(ms), want, String(ms));
  t.equal(caught(() => formatTimespan(-1)).code, 'PODSOCK_ERR_INTERNAL');
  t.equal(caught(() => formatTimespan(1.5)).code, 'PODSOCK_ERR_INTERNAL');
});

void t.test('format then parse is the identity', async (t) => {
  let seed = 12345;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 2000; i++) {
    const ms = next() % (MAX_TIMESPAN_MS + 1);
    if (parseTimespan(formatTimespan(ms), 'X') !== ms) t.fail(`round trip of ${ms}`);
  }
  t.equal(parseTimespan(formatTimespan(MAX_TIMESPAN_MS), 'X'), MAX_TIMESPAN_MS);
  t.equal(parseTimespan(formatTimespan(null), 'X'), null);
});
