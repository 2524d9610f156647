import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  formatRatio,
  formatValue,
  median,
  parseWrk,
  ratio,
  statCpuTicks,
  statusKiB,
  table,
  targetVerdict,
} from '../../../scripts/bench/stats.js';

// Verbatim wrk 4.1.0 (Debian 12) output.
const WRK_404 = `Running 1s test @ http://127.0.0.1:18777/404
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    14.34ms   12.62ms  69.92ms   78.89%
    Req/Sec   319.80    177.57   676.00     60.00%
  323 requests in 1.02s, 32.17KB read
  Non-2xx or 3xx responses: 323
Requests/sec:    315.49
Transfer/sec:     31.43KB
`;

const WRK_ERRORS = `Running 4s test @ http://127.0.0.1:40001/1k
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms    1.02ms  20.11ms   89.12%
    Req/Sec    10.89k     1.01k   12.55k    70.00%
  87123 requests in 4.00s, 105.49MB read
  Socket errors: connect 3, read 17, write 2, timeout 1
Requests/sec:  21780.75
Transfer/sec:     26.37MB
`;

void t.test('parseWrk reads requests, duration, rate and every error count', async (t) => {
  t.same(parseWrk(WRK_404), { requests: 323, seconds: 1.02, requestsPerSec: 315.49, socketErrors: 0, non2xx: 323 });
  t.same(parseWrk(WRK_ERRORS), { requests: 87123, seconds: 4, requestsPerSec: 21780.75, socketErrors: 23, non2xx: 0 });
  t.equal(parseWrk(WRK_404.replace('1.02s', '900.00ms')).seconds, 0.9);
  t.equal(parseWrk(WRK_404.replace('1.02s', '1.50m')).seconds, 90);
});

void t.test('parseWrk refuses output that is not a summary', async (t) => {
  t.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n'), {
    message: "Not a wrk summary (no 'requests in' or 'Requests/sec' line): 'unable to connect to 127.0.0.1:1 Connection refused'",
  });
  t.throws(() => parseWrk(WRK_404.replace(/^Requests\/sec:.*$/m, '')), /Not a wrk summary/);
});

void t.test('statusKiB reads one field of /proc/PID/status', async (t) => {
  const status = 'Name:\tnode\nVmPeak:\t 1234567 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\nThreads:\t7\n';
  t.equal(statusKiB(status, 'VmHWM'), 51234);
  t.equal(statusKiB(status, 'VmRSS'), 40000);
  t.equal(statusKiB(status, 'VmSwap'), null);
  t.equal(statusKiB(status, 'Threads'), null, 'a field without kB is not a size');
});

void t.test('statCpuTicks adds utime and stime, whatever the command name holds', async (t) => {
  // Fields 14 and 15 are 7 and 5; the name contains a space and a parenthesis.
  const tail = 'S 1 1 1 0 -1 4194304 100 0 0 0 7 5 0 0 20 0 1 0 162028 3133440 414';
  t.equal(statCpuTicks(`17571 (node) ${tail}`), 12);
  t.equal(statCpuTicks(`17571 (a b) c)) ${tail}`), 12);
  t.throws(() => statCpuTicks('17571 (node) S 1'), /Malformed \/proc\/PID\/stat/);
  t.ok(statCpuTicks(readFileSync('/proc/self/stat', 'utf8')) >= 0, 'parses the real file of this process');
});

void t.test('median of odd and even counts, unsorted input left alone', async (t) => {
  const input = [5, 1, 3];
  t.equal(median(input), 3);
  t.same(input, [5, 1, 3]);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([7]), 7);
  t.throws(() => median([]), { message: 'median of an empty list' });
});

void t.test('ratio and its formatting', async (t) => {
  t.equal(ratio(3, 2), 1.5);
  t.equal(ratio(3, 0), null);
  t.equal(ratio(undefined, 2), null);
  t.equal(ratio(3, null), null);
  t.equal(formatRatio(1.5), '1.50x');
  t.equal(formatRatio(0.123), '0.12x');
  t.equal(formatRatio(null), 'n/a');
});

void t.test('formatValue keeps about three significant digits', async (t) => {
  t.equal(formatValue(21666.12), '21666');
  t.equal(formatValue(302.4), '302');
  t.equal(formatValue(66.31), '66.3');
  t.equal(formatValue(1.281), '1.28');
});

void t.test('table pads every column but the last', async (t) => {
  t.equal(
    table([
      ['', 'median', 'n'],
      ['podsock', '9052', '5'],
    ]),
    '         median  n\npodsock  9052    5',
  );
});

void t.test('targetVerdict says ok at and above the minimum, MISSED below or without a ratio', async (t) => {
  const target = { scenario: 'keepalive', subject: 'podsock', base: 'proxyd', min: 1.7 };
  t.equal(targetVerdict(target, 1.7), 'keepalive podsock/proxyd 1.70x >= 1.70x ok');
  t.equal(targetVerdict(target, 0.74), 'keepalive podsock/proxyd 0.74x >= 1.70x MISSED');
  t.equal(targetVerdict(target, null), 'keepalive podsock/proxyd n/a >= 1.70x MISSED');
});
