import t from 'tap';
import { splitEnvironment, splitWords } from '../../../src/config/split-words.js';
import { caught } from '../../helpers/caught.js';

void t.test('words, quotes and escapes (extract_first_word with UNQUOTE|CUNESCAPE)', async (t) => {
  const table: Array<[string, string[]]> = [
    ['', []],
    ['   \t ', []],
    ['a', ['a']],
    ['  a   b\tc\nd\re  ', ['a', 'b', 'c', 'd', 'e']],
    ['"a b" c', ['a b', 'c']],
    ["'a b' c", ['a b', 'c']],
    ['a"b c"d', ['ab cd']],
    ['"" x', ['', 'x']],
    ["''", ['']],
    ['"it\'s"', ["it's"]],
    ["'say \"hi\"'", ['say "hi"']],
    ['\\s', [' ']],
    ['"a\\"b"', ['a"b']],
    ["'a\\'b'", ["a'b"]],
    ['\\\\', ['\\']],
    ['"\\\\"', ['\\']],
    ['\\n\\t\\r\\a\\b\\f\\v', ['\n\t\r\u0007\b\f\v']],
    ['\\x41\\x62', ['Ab']],
    ['\\xc3\\xa9', ['\u00e9']],
    ['\\101', ['A']],
    ['\\303\\251', ['\u00e9']],
    ['\\u00e9', ['\u00e9']],
    ['\\U0001F600', ['\u{1F600}']],
    ['"$(rm -rf /)" `x` $HOME %h', ['$(rm -rf /)', '`x`', '$HOME', '%h']],
    ['sh -c "echo hello; exit 1"', ['sh', '-c', 'echo hello; exit 1']],
    ['--opt="a b"', ['--opt=a b']],
    ['caf\u00e9 \u{1F600}', ['caf\u00e9', '\u{1F600}']],
  ];
  for (const [value, want] of table) t.same(splitWords(value, 'w'), want, JSON.stringify(value));
});

void t.test('errors name where and show the value', async (t) => {
  const cases: Array<[string, string]> = [
    ['"abc', `f:3: Exec: unterminated double quote in '"abc'`],
    ["a 'b", `f:3: Exec: unterminated single quote in 'a 'b'`],
    ['abc\\', `f:3: Exec: trailing backslash in 'abc\\'`],
    ['"abc\\', `f:3: Exec: trailing backslash in '"abc\\'`],
    ['\\q', `f:3: Exec: unknown escape '\\q' in '\\q'`],
    // Like systemd without EXTRACT_UNESCAPE_SEPARATORS: write '\s' or quote the space.
    ['a\\ b', `f:3: Exec: unknown escape '\\ ' in 'a\\ b'`],
    ['\\$HOME', `f:3: Exec: unknown escape '\\$' in '\\$HOME'`],
    ['\\x4', `f:3: Exec: invalid escape '\\x' (expected two hex digits) in '\\x4'`],
    ['\\xzz', `f:3: Exec: invalid escape '\\x' (expected two hex digits) in '\\xzz'`],
    ['\\x00', `f:3: Exec: escape yields a NUL byte in '\\x00'`],
    ['\\000', `f:3: Exec: escape yields a NUL byte in '\\000'`],
    ['\\u0000', `f:3: Exec: escape yields a NUL character in '\\u0000'`],
    ['\\12', `f:3: Exec: invalid octal escape (expected three octal digits) in '\\12'`],
    ['\\477', `f:3: Exec: octal escape '\\477' is larger than a byte in '\\477'`],
    ['\\u12', `f:3: Exec: invalid escape '\\u' (expected 4 hex digits) in '\\u12'`],
    ['\\ud800', `f:3: Exec: escape '\\ud800' is not a valid Unicode character in '\\ud800'`],
    ['\\U00110000', `f:3: Exec: escape '\\U00110000' is not a valid Unicode character in '\\U00110000'`],
    ['\\xff', `f:3: Exec: escaped bytes are not valid UTF-8 in '\\xff'`],
    ['\\xc3x', `f:3: Exec: escaped bytes are not valid UTF-8 in '\\xc3x'`],
  ];
  for (const [value, message] of cases) {
    const err = caught(() => splitWords(value, 'f:3: Exec'));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', JSON.stringify(value));
    t.equal(err.message, message);
  }
});

void t.test('Environment= style pairs', async (t) => {
  t.same(splitEnvironment('"A=b c" D=e F= G=x=y', 'w'), [
    { name: 'A', value: 'b c' },
    { name: 'D', value: 'e' },
    { name: 'F', value: '' },
    { name: 'G', value: 'x=y' },
  ]);
  t.same(splitEnvironment('A=$(x) B="$HOME"', 'w'), [
    { name: 'A', value: '$(x)' },
    { name: 'B', value: '$HOME' },
  ]);
  t.same(splitEnvironment('MSG="line1\\nline2"', 'w'), [{ name: 'MSG', value: 'line1\nline2' }]);
  t.same(splitEnvironment('', 'w'), []);
});

void t.test('Environment= errors', async (t) => {
  for (const [value, word] of [
    ['A=1 b c', 'b'],
    ['=x', '=x'],
    ['JUSTNAME', 'JUSTNAME'],
  ] as const) {
    const err = caught(() => splitEnvironment(value, 'f:9: Environment'));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG');
    t.equal(
      err.message,
      `f:9: Environment: invalid environment assignment '${word}' (expected NAME=VALUE; quote values that contain spaces: "NAME=a b")`,
    );
  }
  t.equal(caught(() => splitEnvironment('"A=1', 'f:9: Environment')).message, `f:9: Environment: unterminated double quote in '"A=1'`);
});
