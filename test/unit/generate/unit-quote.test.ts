import t from 'tap';
import { splitEnvironment, splitWords } from '../../../src/config/split-words.js';
import { escapeDollar, escapeSpecifiers, execLine, isLiteralValue, quoteWord } from '../../../src/generate/unit-quote.js';

const WORDS = ['plain', '', 'a b', 'it\'s', 'say "hi"', 'back\\slash', 'tab\there', 'line\nbreak', 'bell\u0007', 'del\u007f', 'ünï cödé', '$(rm -rf /)', '100%', '#not-a-comment', ';x'];

void t.test('quoteWord: split-words reads every word back unchanged', async (t) => {
  for (const w of WORDS) t.same(splitWords(quoteWord(w), 'test'), [w], JSON.stringify(w));
  t.same(splitWords(WORDS.map(quoteWord).join(' '), 'test'), WORDS, 'as one command line');
});

void t.test('quoteWord: plain words stay as they are', async (t) => {
  t.equal(quoteWord('/usr/bin/podman'), '/usr/bin/podman');
  t.equal(quoteWord('--volume=/a:/b:ro'), '--volume=/a:/b:ro');
  t.equal(quoteWord('a b'), '"a b"');
  t.equal(quoteWord(''), '""');
  t.equal(quoteWord('x\ny'), '"x\\ny"');
  t.equal(quoteWord('\u0001'), '"\\x01"');
});

void t.test('Environment= values read back as one NAME=VALUE pair', async (t) => {
  t.same(splitEnvironment(quoteWord('GREETING=hello "world"'), 'test'), [{ name: 'GREETING', value: 'hello "world"' }]);
});

void t.test('specifiers and variables are escaped for command lines', async (t) => {
  t.equal(escapeSpecifiers('50%h'), '50%%h');
  t.equal(escapeDollar('$HOME ${X}'), '$$HOME $${X}');
  t.equal(execLine(['/opt/my node/node', '/srv/a%b/main.js', 'run', 'x$y']), '"/opt/my node/node" /srv/a%%b/main.js run x$$y');
});

void t.test('isLiteralValue: what Key=value gives back exactly', async (t) => {
  t.equal(isLiteralValue('8080:80'), true);
  t.equal(isLiteralValue('a "b" c'), true);
  t.equal(isLiteralValue(''), false, 'an empty value resets the key');
  t.equal(isLiteralValue(' x'), false, 'whitespace is stripped');
  t.equal(isLiteralValue('x\\'), false, 'a trailing backslash continues the line');
  t.equal(isLiteralValue('"x"'), false, 'Lookup() removes surrounding quotes');
  t.equal(isLiteralValue('a\nb'), false);
});
