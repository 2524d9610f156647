// Fuzzes parseNotifyMessage(), which reads datagrams the container controls: random bytes and valid
// messages with hostile mutations (NULs, invalid UTF-8, missing '=', lowercase keys, empty lines,
// huge sizes). It never throws; it accepts a datagram only when formatting the fields gives the
// datagram back byte for byte (so nothing was reinterpreted), and refuses everything else with a
// short reason.
import t from 'tap';
import { formatNotifyMessage, NOTIFY_MAX_BYTES, parseNotifyMessage, type ParsedNotifyMessage } from '../../../src/sd/notify-message.js';
import { fuzzIterations, fuzzSeed, INVALID_UTF8, mutateBytes, Rng, show } from './rng.js';

const SEED = fuzzSeed();
const N = fuzzIterations(20_000);
const MAX_CALL_MS = 2000;
/** Reasons end up in logs: they quote at most a short excerpt of what the peer sent. */
const MAX_REASON = 200;
const KEY_RE = /^[A-Z0-9_]+$/;

const KEYS = ['READY', 'STATUS', 'ERRNO', 'MAINPID', 'FDSTORE', 'FDNAME', 'NOTIFYACCESS', 'BARRIER', 'WATCHDOG', 'WATCHDOG_USEC',
  'EXTEND_TIMEOUT_USEC', 'RELOADING', 'STOPPING', 'MONOTONIC_USEC', 'X_APP_1', '_', '9'];
const VALUES = ['1', '0', '', 'Serving on :80', 'héllo ✓', '=', 'a=b=c', ' padded ', '\t', '4294967296', '-1', 'trigger', '😀',
  '\r', 'x'.repeat(200)];
const TOKENS = ['\n', '\n\n', '=', '==', 'ready=1', 'Ready=1', 'MAINPID=1', 'FDSTORE=1', ' READY=1', 'READY =1', '\r\n', '\u00e9',
  '\ufeff', '\u2028', 'X-A=1', '\\n', '%s'];

/** Every reason parseNotifyMessage() gives, by class. */
const REASONS = [
  /^the message is empty$/,
  /^the message contains a NUL byte at offset \d+$/,
  /^the message is not valid UTF-8$/,
  /^line \d+ is empty$/,
  /^line \d+ '.*' has no '='$/s,
  /^line \d+ '.*' has an empty key$/s,
  /^line \d+ has an invalid key '.*' \(expected A-Z, 0-9 and _\)$/s,
];

function randomFields(r: Rng): Array<[string, string]> {
  return Array.from({ length: r.range(1, 6) }, (): [string, string] => [
    r.chance(0.9) ? r.pick(KEYS) : r.join(['A', 'Z', '0', '_', 'Q'], 8) || 'K',
    r.chance(0.9) ? r.pick(VALUES) : r.bytes(r.int(30)).toString('utf8').replace(/[\n\0]/g, ''),
  ]);
}

function parse(data: Buffer): { result: ParsedNotifyMessage | null; ms: number; threw: unknown } {
  const start = performance.now();
  try {
    return { result: parseNotifyMessage(data), ms: performance.now() - start, threw: null };
  } catch (err) {
    return { result: null, ms: performance.now() - start, threw: err };
  }
}

/** What is wrong with the result for `data`, or null. */
function problem(data: Buffer, result: ParsedNotifyMessage | null, threw: unknown): string | null {
  if (result === null) return `threw ${String(threw)}`;
  if (!result.ok) {
    if (typeof result.reason !== 'string' || result.reason === '') return 'refused without a reason';
    if (result.reason.length > MAX_REASON) return `reason is ${result.reason.length} characters`;
    return null;
  }
  if (result.fields.length === 0) return 'accepted with no fields';
  for (const [k, v] of result.fields) {
    if (!KEY_RE.test(k)) return `accepted key ${show(k)}`;
    if (v.includes('\n') || v.includes('\0')) return `accepted value ${show(v)}`;
  }
  // Byte-exact: the datagram is the formatted fields plus at most one '\n' and then one NUL.
  const expected = Buffer.from(formatNotifyMessage(result.fields), 'utf8');
  let got = data;
  if (got.at(-1) === 0) got = got.subarray(0, -1);
  if (got.at(-1) === 0x0a) got = got.subarray(0, -1);
  if (!got.equals(expected)) return `fields ${show(JSON.stringify(result.fields))} do not format back to the datagram`;
  return null;
}

void t.test(`parseNotifyMessage on random and mutated datagrams (seed ${SEED}, ${N} inputs)`, async (t) => {
  const r = new Rng(SEED);
  const failures: string[] = [];
  let accepted = 0;
  let maxMs = 0;
  const reasons = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    let data: Buffer;
    const kind = r.int(10);
    if (kind < 6) data = mutateBytes(r, Buffer.from(formatNotifyMessage(randomFields(r))), TOKENS, 3);
    else if (kind < 8) data = Buffer.from(formatNotifyMessage(randomFields(r)) + r.pick(['', '\n', '\0', '\n\0', '\0\0', '\n\n']));
    else data = r.bytes(r.int(64));
    const { result, ms, threw } = parse(data);
    maxMs = Math.max(maxMs, ms);
    if (result?.ok === true) accepted++;
    else if (result !== null) {
      // Counted by class only: a reason quotes peer bytes, which must not reach the TAP stream raw.
      const kindOfReason = REASONS.find((re) => re.test(result.reason))?.source ?? 'other';
      reasons.set(kindOfReason, (reasons.get(kindOfReason) ?? 0) + 1);
    }
    const p = problem(data, result, threw) ?? (ms > MAX_CALL_MS ? `took ${ms.toFixed(0)} ms` : null);
    if (p !== null && failures.length < 5) failures.push(`#${i}: ${p}; datagram ${show(data)}`);
  }
  t.comment(`accepted ${accepted}/${N}; slowest ${maxMs.toFixed(2)} ms; reasons ${JSON.stringify(Object.fromEntries(reasons))}`);
  t.same(failures, [], `no failures (replay with PODSOCK_FUZZ_SEED=${SEED})`);
  t.ok(accepted > N / 5, `${accepted} accepted`);
  t.ok(N - accepted > N / 5, `${N - accepted} refused`);
  // Each hostile class must actually have been produced and refused, and no refusal is unexplained.
  for (const re of REASONS) t.ok((reasons.get(re.source) ?? 0) > 0, `refusals include ${re.source}`);
  t.equal(reasons.get('other'), undefined, 'every refusal has a known reason');
});

void t.test(`parse(format(fields)) round-trips (seed ${SEED})`, async (t) => {
  const r = new Rng(SEED + 1);
  const failures: string[] = [];
  const count = fuzzIterations(20_000);
  for (let i = 0; i < count; i++) {
    const fields = randomFields(r);
    const text = formatNotifyMessage(fields);
    for (const suffix of ['', '\n', '\0', '\n\0']) {
      const got = parseNotifyMessage(Buffer.from(text + suffix, 'utf8'));
      if ((!got.ok || JSON.stringify(got.fields) !== JSON.stringify(fields)) && failures.length < 5) {
        failures.push(`${show(JSON.stringify(fields))} + ${show(suffix)} -> ${show(JSON.stringify(got))}`);
      }
    }
  }
  t.same(failures, [], `every valid message round-trips (replay with PODSOCK_FUZZ_SEED=${SEED})`);
});

void t.test(`each hostile mutation of a valid message is refused for its reason (seed ${SEED})`, async (t) => {
  const r = new Rng(SEED + 2);
  const failures: string[] = [];
  const count = Math.max(1, Math.floor(fuzzIterations(20_000) / 4));
  const reasonOf = (b: Buffer): string => {
    const p = parseNotifyMessage(b);
    return p.ok ? 'accepted' : p.reason;
  };
  for (let i = 0; i < count; i++) {
    const text = formatNotifyMessage(randomFields(r));
    const bytes = Buffer.from(text, 'utf8');
    const at = r.int(bytes.length); // before the last byte: a NUL there is not the tolerated trailing one
    const cases: Array<[string, Buffer, RegExp]> = [
      ['NUL', Buffer.concat([bytes.subarray(0, at), Buffer.from([0]), bytes.subarray(at)]), new RegExp(`^the message contains a NUL byte at offset ${at}$`)],
      ['invalid UTF-8', Buffer.concat([bytes.subarray(0, at), r.pick(INVALID_UTF8), bytes.subarray(at)]), /^the message is not valid UTF-8$/],
      ['lowercase key', Buffer.from(`${text}\nready=1`), /^line \d+ has an invalid key 'ready' \(expected A-Z, 0-9 and _\)$/],
      ['missing =', Buffer.from(`${text}\nREADY`), /^line \d+ 'READY' has no '='$/],
      ['empty key', Buffer.from(`=1\n${text}`), /^line 1 '=1' has an empty key$/],
      ['empty line', Buffer.from(`${text}\n\nREADY=1`), /^line \d+ is empty$/],
      ['CRLF', Buffer.from(`${text}\r\nX_A=1`), /accepted|^line \d+/],
    ];
    for (const [what, data, re] of cases) {
      const got = reasonOf(data);
      if (!re.test(got) && failures.length < 5) failures.push(`${what}: ${show(data)} -> ${show(got)}`);
    }
  }
  t.same(failures, [], `refused with the expected reasons (replay with PODSOCK_FUZZ_SEED=${SEED})`);
});

void t.test('huge datagrams: no throw, linear time, short reasons', async (t) => {
  // The transport drops anything over NOTIFY_MAX_BYTES, but the parser must not depend on it.
  const shapes: Array<[string, Buffer, boolean]> = [
    ['4096 bytes', Buffer.from(`STATUS=${'s'.repeat(NOTIFY_MAX_BYTES - 7)}`), true],
    ['1 MiB STATUS', Buffer.from(`STATUS=${'s'.repeat(1 << 20)}`), true],
    ['1 MiB of newlines', Buffer.alloc(1 << 20, 0x0a), false],
    ['1 MiB key', Buffer.from(`${'K'.repeat(1 << 20)}=1`), true],
    ['1 MiB lowercase key', Buffer.from(`${'k'.repeat(1 << 20)}=1`), false],
    ['1 MiB without =', Buffer.alloc(1 << 20, 0x41), false],
    ['100k lines', Buffer.from('X_A=1\n'.repeat(100_000)), true],
    ['1 MiB of NULs', Buffer.alloc(1 << 20, 0), false],
    ['1 MiB of 0xff', Buffer.alloc(1 << 20, 0xff), false],
  ];
  for (const [what, data, ok] of shapes) {
    const { result, ms, threw } = parse(data);
    t.equal(problem(data, result, threw), null, `${what}: well-formed result`);
    t.equal(result?.ok, ok, `${what}: ${ok ? 'accepted' : 'refused'}`);
    t.ok(ms < MAX_CALL_MS, `${what}: ${ms.toFixed(1)} ms`);
  }
});
