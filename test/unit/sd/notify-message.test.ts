import t from 'tap';
import { isPodsockError } from '../../../src/errors.js';
import { formatNotifyMessage, NOTIFY_MAX_BYTES, parseNotifyMessage } from '../../../src/sd/notify-message.js';

const parse = (s: string | Buffer) => parseNotifyMessage(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

void t.test('NOTIFY_MAX_BYTES is systemd NOTIFY_BUFFER_MAX', async (t) => {
  t.equal(NOTIFY_MAX_BYTES, 4096);
});

void t.test('parses KEY=VALUE lines in order, keeping duplicates', async (t) => {
  t.same(parse('READY=1'), { ok: true, fields: [['READY', '1']] });
  t.same(parse('READY=1\nSTATUS=Serving on port 80\nSTATUS=again'), {
    ok: true,
    fields: [
      ['READY', '1'],
      ['STATUS', 'Serving on port 80'],
      ['STATUS', 'again'],
    ],
  });
});

void t.test('a trailing newline is implied, and tolerated once', async (t) => {
  t.same(parse('READY=1\n'), { ok: true, fields: [['READY', '1']] });
  t.same(parse('READY=1\n\n'), { ok: false, reason: 'line 2 is empty' });
});

void t.test('values may be empty, contain "=", spaces and non-ASCII text', async (t) => {
  t.same(parse('STATUS=\nX_A=b=c\nSTATUS=héllo wörld ✓'), {
    ok: true,
    fields: [
      ['STATUS', ''],
      ['X_A', 'b=c'],
      ['STATUS', 'héllo wörld ✓'],
    ],
  });
});

void t.test('keys: digits and underscore allowed, anything else refused', async (t) => {
  t.same(parse('X_1=2'), { ok: true, fields: [['X_1', '2']] });
  t.same(parse('ready=1'), { ok: false, reason: "line 1 has an invalid key 'ready' (expected A-Z, 0-9 and _)" });
  t.same(parse('READY=1\nX-Y=1'), { ok: false, reason: "line 2 has an invalid key 'X-Y' (expected A-Z, 0-9 and _)" });
  t.same(parse(' READY=1'), { ok: false, reason: "line 1 has an invalid key ' READY' (expected A-Z, 0-9 and _)" });
  t.same(parse('\uFEFFREADY=1'), { ok: false, reason: "line 1 has an invalid key '\uFEFFREADY' (expected A-Z, 0-9 and _)" });
});

void t.test('a line without "=" or with an empty key is refused, naming the line', async (t) => {
  t.same(parse('READY=1\nWATCHDOG'), { ok: false, reason: "line 2 'WATCHDOG' has no '='" });
  t.same(parse('=1'), { ok: false, reason: "line 1 '=1' has an empty key" });
  t.same(parse('READY=1\n\nSTATUS=x'), { ok: false, reason: 'line 2 is empty' });
});

void t.test('quoted excerpts of peer text are bounded', async (t) => {
  const r = parse('A'.repeat(1000));
  t.same(r, { ok: false, reason: `line 1 '${'A'.repeat(64)}…' has no '='` });
});

void t.test('empty payloads are refused', async (t) => {
  t.same(parse(''), { ok: false, reason: 'the message is empty' });
  t.same(parse(Buffer.from([0])), { ok: false, reason: 'the message is empty' });
  t.same(parse('\n'), { ok: false, reason: 'line 1 is empty' });
});

void t.test('NUL: a single trailing one is tolerated, an embedded one refused', async (t) => {
  t.same(parse(Buffer.from('READY=1\0')), { ok: true, fields: [['READY', '1']] });
  t.same(parse(Buffer.from('READY=1\0\0')), { ok: false, reason: 'the message contains a NUL byte at offset 7' });
  t.same(parse(Buffer.from('READY=1\0STATUS=x')), { ok: false, reason: 'the message contains a NUL byte at offset 7' });
});

void t.test('invalid UTF-8 is refused', async (t) => {
  t.same(parse(Buffer.from([0x53, 0x3d, 0xff])), { ok: false, reason: 'the message is not valid UTF-8' });
  t.same(parse(Buffer.from([0x53, 0x3d, 0xc3])), { ok: false, reason: 'the message is not valid UTF-8' }, 'truncated sequence');
  t.same(parse(Buffer.from([0x53, 0x3d, 0xed, 0xa0, 0x80])), { ok: false, reason: 'the message is not valid UTF-8' }, 'surrogate');
});

void t.test('parse takes any length (the size limit is the transport’s)', async (t) => {
  const big = `STATUS=${'x'.repeat(10000)}`;
  t.same(parse(big), { ok: true, fields: [['STATUS', 'x'.repeat(10000)]] });
});

void t.test('format: record or pairs, joined by newlines', async (t) => {
  t.equal(formatNotifyMessage({ READY: '1', STATUS: 'Up' }), 'READY=1\nSTATUS=Up');
  t.equal(
    formatNotifyMessage([
      ['STATUS', 'a'],
      ['STATUS', 'b=c'],
      ['X_EMPTY', ''],
    ]),
    'STATUS=a\nSTATUS=b=c\nX_EMPTY=',
  );
  const round = parse(formatNotifyMessage({ READY: '1', STATUS: 'ünïcode' }));
  t.same(round, { ok: true, fields: [['READY', '1'], ['STATUS', 'ünïcode']] });
});

void t.test('format refuses newlines and NULs in values, bad keys, and nothing at all', async (t) => {
  const cases: Array<[Array<[string, string]> | Record<string, string>, RegExp, string | undefined]> = [
    [{ STATUS: 'two\nlines' }, /^Invalid value for notify key 'STATUS': it contains a newline$/, 'STATUS'],
    [[['READY', '1'], ['X_Y', 'a\0b']], /^Invalid value for notify key 'X_Y': it contains a NUL byte$/, 'X_Y'],
    [{ 'status': 'x' }, /^Invalid notify key 'status': expected A-Z, 0-9 and _$/, 'status'],
    [{ '': 'x' }, /^Invalid notify key '': expected/, ''],
    [{ 'A=B': 'x' }, /^Invalid notify key 'A=B'/, 'A=B'],
    [[], /^Refusing to send an empty notify message$/, undefined],
  ];
  for (const [fields, message, key] of cases) {
    try {
      formatNotifyMessage(fields);
      t.fail(`accepted ${JSON.stringify(fields)}`);
    } catch (err) {
      t.ok(isPodsockError(err, 'PODSOCK_ERR_NOTIFY'));
      t.match((err as Error).message, message);
      t.equal((err as { details: { key?: string } }).details.key, key);
    }
  }
});
