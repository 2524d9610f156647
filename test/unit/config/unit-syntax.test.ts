import t from 'tap';
import {
  MAX_LINE_LENGTH,
  MAX_UNIT_FILE_BYTES,
  findSection,
  parseUnitBytes,
  parseUnitText,
  type UnitFile,
} from '../../../src/config/unit-syntax.js';
import { caught } from '../../helpers/caught.js';

/** Sections as plain [name, line, [key, value, line][]] for exact comparison. */
function shape(u: UnitFile): Array<[string, number, Array<[string, string, number]>]> {
  return u.sections.map((s) => [s.name, s.line, s.entries.map((e) => [e.key, e.value, e.line] as [string, string, number])]);
}

void t.test('sections, assignments, comments and blank lines', async (t) => {
  const text = [
    '# leading comment',
    '; also a comment',
    '',
    '[Unit]',
    'Description = A web server  ',
    '   # indented comment',
    '[Container]',
    '  Image=docker.io/library/nginx',
    'Exec=  nginx -g "daemon off;"',
    'Key=a=b=c',
    '\t',
  ].join('\n');
  t.same(shape(parseUnitText(text, 'web.container')), [
    ['Unit', 4, [['Description', 'A web server', 5]]],
    ['Container', 7, [['Image', 'docker.io/library/nginx', 8], ['Exec', 'nginx -g "daemon off;"', 9], ['Key', 'a=b=c', 10]]],
  ]);
});

void t.test('a value keeps inner whitespace and comment characters', async (t) => {
  const u = parseUnitText('[A]\nK=x  # not a comment ; nor this\n', 'f');
  t.same(shape(u), [['A', 1, [['K', 'x  # not a comment ; nor this', 2]]]]);
});

void t.test('line endings: LF, CRLF and lone CR; BOM skipped', async (t) => {
  t.same(shape(parseUnitText('\ufeff[A]\r\nK=1\rL=2\nM=3', 'f')), [['A', 1, [['K', '1', 2], ['L', '2', 3], ['M', '3', 4]]]]);
});

void t.test('continuation lines: backslash becomes a space, next line appended as is', async (t) => {
  const text = ['[Container]', 'Exec=sh -c \\', '   "echo hi"', 'Next=1'].join('\n');
  t.same(shape(parseUnitText(text, 'f')), [['Container', 1, [['Exec', 'sh -c     "echo hi"', 2], ['Next', '1', 4]]]]);
});

void t.test('comment lines inside a continuation are skipped', async (t) => {
  const text = ['[C]', 'Exec=a \\', '# a comment', '  ; another', 'b', 'X=1'].join('\n');
  t.same(shape(parseUnitText(text, 'f')), [['C', 1, [['Exec', 'a  b', 2], ['X', '1', 6]]]]);
});

void t.test('an even number of trailing backslashes is not a continuation', async (t) => {
  const text = ['[C]', 'A=x\\\\', 'B=y\\\\\\', 'z'].join('\n');
  t.same(shape(parseUnitText(text, 'f')), [['C', 1, [['A', 'x\\\\', 2], ['B', 'y\\\\ z', 3]]]]);
});

void t.test('whitespace after the backslash means no continuation', async (t) => {
  const text = ['[C]', 'A=x\\ ', 'B=y'].join('\n');
  t.same(shape(parseUnitText(text, 'f')), [['C', 1, [['A', 'x\\', 2], ['B', 'y', 3]]]]);
});

void t.test('a continuation open at the end of the file is parsed', async (t) => {
  t.same(shape(parseUnitText('[C]\nA=x \\', 'f')), [['C', 1, [['A', 'x', 2]]]]);
  t.same(shape(parseUnitText('[C]\nA=x \\\n', 'f')), [['C', 1, [['A', 'x', 2]]]]);
});

void t.test('a header can be continued too', async (t) => {
  t.same(shape(parseUnitText('[Con\\\ntainer]\nK=v\n', 'f')), [['Con tainer', 1, [['K', 'v', 3]]]]);
});

void t.test('repeated keys accumulate; repeated sections merge', async (t) => {
  const text = ['[C]', 'Env=A=1', '[D]', 'X=1', '[C]', 'Env=B=2', 'Env=C=3'].join('\n');
  t.same(shape(parseUnitText(text, 'f')), [
    ['C', 1, [['Env', 'A=1', 2], ['Env', 'B=2', 6], ['Env', 'C=3', 7]]],
    ['D', 3, [['X', '1', 4]]],
  ]);
});

void t.test('an empty assignment resets the key, in merged sections too', async (t) => {
  const text = ['[C]', 'Env=A=1', 'Other=x', 'Env=B=2', '[D]', '[C]', 'Env=', 'Env=C=3', 'Other=  '].join('\n');
  t.same(shape(parseUnitText(text, 'f')), [
    ['C', 1, [['Env', 'C=3', 8]]],
    ['D', 5, []],
  ]);
});

void t.test('findSection', async (t) => {
  const u = parseUnitText('[A]\n[B]\nK=v\n', 'f');
  t.equal(findSection(u, 'B')?.line, 2);
  t.equal(findSection(u, 'b'), undefined);
});

void t.test('syntax errors name file:line', async (t) => {
  const cases: Array<[string, string]> = [
    ['K=v\n', "web.container:1: assignment 'K=v' is outside of any section (add a section header such as '[Container]' first)"],
    ['# c\n\n[C]\nno equals sign\n', "web.container:4: line 'no equals sign' is neither a section header nor a Key=Value assignment"],
    ['[C]\n=value\n', "web.container:2: missing key name before '=' in '=value'"],
    ['[C]\n  = value\n', "web.container:2: missing key name before '=' in '= value'"],
    ['[C\n', "web.container:1: invalid section header '[C' (expected '[Name]')"],
    ['[C] x\n', "web.container:1: invalid section header '[C] x' (expected '[Name]')"],
    ['[]\n', "web.container:1: invalid section header '[]' (expected '[Name]')"],
    ['[a[b]\n', "web.container:1: invalid section header '[a[b]' (expected '[Name]')"],
    ['[C]\nA=1\nB=2 \\\nmore\n[bad\n', "web.container:5: invalid section header '[bad' (expected '[Name]')"],
    ['[C]\nA=1\x00\n', 'web.container:2: contains a NUL byte; is this a text file?'],
    ['[C]\n.include /etc/x\n', "web.container:2: line '.include /etc/x' is neither a section header nor a Key=Value assignment"],
  ];
  for (const [text, message] of cases) {
    const err = caught(() => parseUnitText(text, 'web.container'));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', JSON.stringify(text));
    t.equal(err.message, message);
    t.equal(err.details.file, 'web.container');
  }
});

void t.test('an error in a continued assignment names its first line', async (t) => {
  const err = caught(() => parseUnitText('[C]\nnot \\\nan assignment\n', 'f'));
  t.equal(err.message, "f:2: line 'not  an assignment' is neither a section header nor a Key=Value assignment");
});

void t.test('long lines are shortened in messages', async (t) => {
  const err = caught(() => parseUnitText(`[C]\n${'x'.repeat(200)}\n`, 'f'));
  t.equal(err.message, `f:2: line '${'x'.repeat(77)}...' is neither a section header nor a Key=Value assignment`);
});

void t.test('limits: line length, continued length, file size', async (t) => {
  t.equal(parseUnitText(`[C]\nK=${'a'.repeat(MAX_LINE_LENGTH - 2)}\n`, 'f').sections[0]?.entries[0]?.value.length, MAX_LINE_LENGTH - 2);
  let err = caught(() => parseUnitText(`[C]\nK=${'a'.repeat(MAX_LINE_LENGTH)}\n`, 'f'));
  t.equal(err.message, `f:2: line is longer than ${MAX_LINE_LENGTH} characters`);
  const half = 'a'.repeat(MAX_LINE_LENGTH / 2);
  err = caught(() => parseUnitText(`[C]\nK=${half}\\\n${half}\\\n${half}\n`, 'f'));
  t.equal(err.message, `f:2: continued line is longer than ${MAX_LINE_LENGTH} characters`);
  err = caught(() => parseUnitBytes(Buffer.alloc(MAX_UNIT_FILE_BYTES + 1, 0x61), 'big.container'));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(err.message, `big.container: file is larger than ${MAX_UNIT_FILE_BYTES} bytes`);
});

void t.test('bytes: UTF-8 required, error names the line', async (t) => {
  t.same(shape(parseUnitBytes(Buffer.from('[C]\nK=caf\u00e9\n'), 'f')), [['C', 1, [['K', 'caf\u00e9', 2]]]]);
  const bytes = Buffer.concat([Buffer.from('[C]\nA=1\nK=caf'), Buffer.from([0xe9]), Buffer.from('\n')]);
  const err = caught(() => parseUnitBytes(bytes, 'f'));
  t.equal(err.code, 'PODSOCK_ERR_CONFIG');
  t.equal(err.message, 'f:3: file is not valid UTF-8');
});
