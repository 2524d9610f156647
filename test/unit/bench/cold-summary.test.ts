import t from 'tap';
import { checkReply, formatSummary, pairedRatio, rotate, spread, summarise } from '../../../scripts/bench/cold-summary.js';

const BODY = 'x'.repeat(1024);
const REPLY = `HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n${BODY}`;

void t.test('checkReply accepts a 200 with exactly the expected body', async (t) => {
  t.equal(checkReply(REPLY, 1024), null);
  t.equal(checkReply(REPLY.replace('HTTP/1.1', 'HTTP/1.0'), 1024), null);
});

void t.test('checkReply names what is wrong with any other reply', async (t) => {
  t.equal(checkReply(REPLY.replace('200 OK', '404 Not Found'), 1024), 'status 404, expected 200');
  t.equal(checkReply(REPLY.slice(0, -1), 1024), 'body of 1023 bytes, expected 1024');
  t.equal(checkReply(`${REPLY}y`, 1024), 'body of 1025 bytes, expected 1024');
  t.equal(checkReply('HTTP/1.1 200 OK\r\nServer: nginx', 1024), 'reply headers never ended');
  t.equal(checkReply('', 1024), "not an HTTP reply: ''");
  t.equal(checkReply('SSH-2.0-OpenSSH\r\nmore', 1024), "not an HTTP reply: 'SSH-2.0-OpenSSH\\nmore'");
});

void t.test('rotate starts each round one variant later', async (t) => {
  const v = ['a', 'b', 'c'];
  t.same(rotate(v, 0), ['a', 'b', 'c']);
  t.same(rotate(v, 1), ['b', 'c', 'a']);
  t.same(rotate(v, 2), ['c', 'a', 'b']);
  t.same(rotate(v, 3), ['a', 'b', 'c']);
  t.same(rotate(v, 0), v);
  t.same(rotate([], 5), []);
});

void t.test('spread gives count, median, min and max', async (t) => {
  t.same(spread([300, 100, 200]), { n: 3, median: 200, min: 100, max: 300 });
  t.same(spread([4, 1, 3, 2]), { n: 4, median: 2.5, min: 1, max: 4 });
  t.throws(() => spread([]), /median of an empty list/);
});

void t.test('pairedRatio takes the median of the ratios of rounds that measured both', async (t) => {
  const samples = { s: [110, null, 300, 120], b: [100, 100, 100, 100] };
  // Rounds 0, 2 and 3: 1.1, 3.0, 1.2 -> 1.2.
  t.equal(pairedRatio(samples, 's', 'b'), 1.2);
  t.equal(pairedRatio(samples, 's', 'missing'), null);
  t.equal(pairedRatio({ s: [null], b: [100] }, 's', 'b'), null);
});

void t.test('summarise checks both first-byte targets and the own-start margin', async (t) => {
  const s = summarise(
    {
      'native-none': [200, 220, 180],
      'native-default': [400, 420, 380],
      'podsock-handover': [240, 300, 250],
      'podsock-proxy': [560, 500, 540],
    },
    { podsock: [130, 120, 125], stub: [3, 2, 4], node: [100, 110, 90] },
  );
  t.same(s.variants['native-none'], { n: 3, median: 200, min: 180, max: 220 });
  t.same(s.variants['podsock-proxy'], { n: 3, median: 540, min: 500, max: 560 });
  t.equal(s.targets.length, 2);
  const [handover, proxy] = s.targets;
  t.match(handover, { subject: 'podsock-handover', base: 'native-none', max: 1.25, ratioOfMedians: 1.25, ok: true });
  // Per round: 240/200, 300/220, 250/180 -> 1.2, 1.3636, 1.3889 -> median 1.3636.
  t.equal(handover?.medianOfRoundRatios?.toFixed(4), '1.3636');
  t.match(proxy, { subject: 'podsock-proxy', base: 'native-default', max: 1.3, ratioOfMedians: 1.35, ok: false });
  t.same(s.ownStart, {
    podsock: { n: 3, median: 125, min: 120, max: 130 },
    stub: { n: 3, median: 3, min: 2, max: 4 },
    node: { n: 3, median: 100, min: 90, max: 110 },
    difference: 22,
    // Per run: 130-3-100, 120-2-110, 125-4-90 = 27, 8, 31.
    medianOfRunDifferences: 27,
    margin: 25,
    ok: true,
  });
});

void t.test('summarise leaves out targets whose variants were not run, and a skipped own start', async (t) => {
  const s = summarise({ 'native-none': [200], 'podsock-handover': [] }, null);
  t.same(Object.keys(s.variants), ['native-none']);
  t.same(s.targets, []);
  t.equal(s.ownStart, null);
  t.same(summarise({}, { podsock: [], stub: [1], node: [1] }).ownStart, null);
  t.same(summarise({}, { podsock: [1], stub: [], node: [1] }).ownStart, null);
});

void t.test('formatSummary prints the table, one verdict line per target and the own-start difference', async (t) => {
  const s = summarise(
    { 'native-none': [200, 100], 'podsock-handover': [300, 200] },
    { podsock: [160], stub: [5], node: [100] },
  );
  t.equal(
    formatSummary(s),
    [
      'first byte (ms)   median  min    max    n',
      'native-none       150.0   100.0  200.0  2',
      'podsock-handover  250.0   200.0  300.0  2',
      'podsock-handover/native-none 1.67x <= 1.25x MISSED (median of per-round ratios 1.75x)',
      'own start (ms)          median  min    max    n',
      'podsock exec -> podman  160.0   160.0  160.0  1',
      '  of which podman stub  5.0     5.0    5.0    1',
      'node -e 0               100.0   100.0  100.0  1',
      'podsock - stub - node -e 0 = +55.0 ms <= +25 ms MISSED (median of per-run differences +55.0 ms)',
    ].join('\n'),
  );
});

void t.test('phases: medians per variant, nulls skipped, and a table beside the first byte', async (t) => {
  const s = summarise(
    { 'native-none': [200, 100, 150], 'podsock-handover': [300] },
    null,
    {
      'native-none': [{ exec: 2, active: 2.5 }, { exec: 4, active: null }, null],
      'podsock-handover': [{ exec: null, active: null }],
    },
  );
  t.same(s.phases, { 'native-none': { exec: 3, active: 2.5 } });
  t.equal(
    formatSummary(s),
    [
      'first byte (ms)   median  min    max    n',
      'native-none       150.0   100.0  200.0  3',
      'podsock-handover  300.0   300.0  300.0  1',
      'after connect (median ms)  service forked  active  first byte',
      'native-none                3.0             2.5     150.0',
      'podsock-handover/native-none 2.00x <= 1.25x MISSED (median of per-round ratios 1.50x)',
    ].join('\n'),
  );
});
