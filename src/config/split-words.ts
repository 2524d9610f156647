/**
 * systemd word splitting for command-line-like settings (Exec=, PodmanArgs=, Mount=, ...) and for
 * Environment=-style KEY=VALUE lists.
 *
 * splitWords() is extract_first_word() (systemd src/basic/extract-word.c) applied repeatedly with
 * EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE, the flags config_parse_exec() and Quadlet's LookupAllArgs() use:
 * - words are separated by runs of " \t\n\r";
 * - single and double quotes group text and are removed; they may start or end in the middle of a
 *   word (`a"b c"d` is one word `ab cd`), and `""` is an empty word;
 * - a backslash starts a C escape (cunescape_one(), src/basic/escape.c), inside quotes too:
 *   \a \b \f \n \r \t \v \\ \" \' \s (space), \xNN, \NNN (octal), \uNNNN, \UNNNNNNNN.
 *   \x and octal escapes produce bytes; the word must still be UTF-8 in the end.
 *
 * Unlike Quadlet (which passes EXTRACT_RELAX), an unterminated quote, a trailing lone backslash, an
 * unknown escape or an escape that yields NUL is an error, as in systemd's own Exec= parsing: a value
 * that would be silently truncated or changed is worse than a clear message.
 *
 * Nothing is expanded: no $VAR, no %-specifiers, no globbing. Every word becomes exactly one argv
 * element; `$(x)` stays `$(x)`. Errors are PodsockError('PODSOCK_ERR_CONFIG') prefixed with `where`.
 */
import { PodsockError, q } from '../errors.js';

const SEPARATORS = ' \t\n\r';

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\u0007',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
  s: ' ',
};

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function fail(where: string, message: string, value: string): PodsockError {
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return new PodsockError('PODSOCK_ERR_CONFIG', `${where}: ${message} in ${q(shown)}`, {
    details: { where, value },
  });
}

function hexValue(s: string): number | null {
  return /^[0-9a-fA-F]+$/.test(s) ? Number.parseInt(s, 16) : null;
}

// unichar_is_valid() (src/basic/utf8.c): no surrogates, no non-characters, at most U+10FFFF.
function isValidUnichar(c: number): boolean {
  if (c >= 0x110000) return false;
  if ((c & 0xfffff800) === 0xd800) return false;
  if (c >= 0xfdd0 && c <= 0xfdef) return false;
  if ((c & 0xfffe) === 0xfffe) return false;
  return true;
}

/** Collects a word from text and raw bytes (\x, octal); the bytes must form UTF-8 by themselves. */
class WordBuilder {
  private text = '';
  private bytes: number[] = [];

  constructor(
    private readonly where: string,
    private readonly value: string,
  ) {}

  addText(s: string): void {
    this.flushBytes();
    this.text += s;
  }

  addByte(b: number): void {
    this.bytes.push(b);
  }

  private flushBytes(): void {
    if (this.bytes.length === 0) return;
    try {
      this.text += UTF8.decode(Uint8Array.from(this.bytes));
    } catch (cause) {
      throw new PodsockError('PODSOCK_ERR_CONFIG', `${this.where}: escaped bytes are not valid UTF-8 in ${q(this.value)}`, {
        cause,
        details: { where: this.where, value: this.value },
      });
    }
    this.bytes = [];
  }

  finish(): string {
    this.flushBytes();
    return this.text;
  }
}

/**
 * Handles the escape whose letter is at value[i] (just after the backslash); returns the index after
 * it. Mirrors cunescape_one() with accept_nul = false.
 */
function unescapeOne(value: string, i: number, word: WordBuilder, where: string): number {
  const c = value[i];
  if (c === undefined) throw fail(where, 'trailing backslash', value);
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) {
    word.addText(simple);
    return i + 1;
  }
  if (c === 'x') {
    const v = hexValue(value.slice(i + 1, i + 3));
    if (v === null || value.slice(i + 1, i + 3).length !== 2) throw fail(where, `invalid escape '\\x' (expected two hex digits)`, value);
    if (v === 0) throw fail(where, 'escape yields a NUL byte', value);
    word.addByte(v);
    return i + 3;
  }
  if (c === 'u' || c === 'U') {
    const n = c === 'u' ? 4 : 8;
    const digits = value.slice(i + 1, i + 1 + n);
    const v = digits.length === n ? hexValue(digits) : null;
    if (v === null) throw fail(where, `invalid escape '\\${c}' (expected ${n} hex digits)`, value);
    if (v === 0) throw fail(where, 'escape yields a NUL character', value);
    if (!isValidUnichar(v)) throw fail(where, `escape '\\${c}${digits}' is not a valid Unicode character`, value);
    word.addText(String.fromCodePoint(v));
    return i + 1 + n;
  }
  if (c >= '0' && c <= '7') {
    const digits = value.slice(i, i + 3);
    if (!/^[0-7]{3}$/.test(digits)) throw fail(where, `invalid octal escape (expected three octal digits)`, value);
    const v = Number.parseInt(digits, 8);
    if (v === 0) throw fail(where, 'escape yields a NUL byte', value);
    if (v > 255) throw fail(where, `octal escape '\\${digits}' is larger than a byte`, value);
    word.addByte(v);
    return i + 3;
  }
  throw fail(where, `unknown escape '\\${c}'`, value);
}

/**
 * Splits a setting's value into words with systemd's quoting and C escapes (see the module comment).
 * `where` prefixes every message, e.g. "/etc/podsock/web.container:7: Exec". Throws only PodsockError.
 */
export function splitWords(value: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = value.length;
  for (;;) {
    while (i < n && SEPARATORS.includes(value[i] as string)) i++;
    if (i >= n) return words;
    // A non-separator was found: a word follows, even if it turns out empty ("").
    const word = new WordBuilder(where, value);
    let quote: '"' | "'" | null = null;
    for (;;) {
      const c = value[i];
      if (c === undefined) {
        if (quote !== null) {
          throw fail(where, `unterminated ${quote === '"' ? 'double' : 'single'} quote`, value);
        }
        break;
      }
      if (quote === null && SEPARATORS.includes(c)) break;
      if (c === '\\') {
        i = unescapeOne(value, i + 1, word, where);
        continue;
      }
      if (quote === null && (c === '"' || c === "'")) {
        quote = c;
        i++;
        continue;
      }
      if (quote !== null && c === quote) {
        quote = null;
        i++;
        continue;
      }
      // Copy a run of ordinary characters at once.
      let j = i + 1;
      while (j < n) {
        const d = value[j] as string;
        if (d === '\\' || d === '"' || d === "'" || (quote === null && SEPARATORS.includes(d))) break;
        j++;
      }
      word.addText(value.slice(i, j));
      i = j;
    }
    words.push(word.finish());
  }
}

/** One `NAME=VALUE` pair from an Environment=-style setting. */
export interface EnvPair {
  readonly name: string;
  readonly value: string;
}

/**
 * Splits an Environment=-style value (`"A=b c" D=e`) into NAME=VALUE pairs: words as splitWords()
 * (config_parse_environ() uses extract_first_word() with EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE too), each
 * of which must contain '=' after a non-empty name. The value is everything after the first '='
 * and may be empty. Throws PodsockError('PODSOCK_ERR_CONFIG') prefixed with `where` for a word that
 * is not an assignment (systemd: "Invalid environment assignment").
 */
export function splitEnvironment(value: string, where: string): EnvPair[] {
  return splitWords(value, where).map((word) => {
    const eq = word.indexOf('=');
    if (eq <= 0) {
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG',
        `${where}: invalid environment assignment ${q(word)} (expected NAME=VALUE; quote values that contain spaces: "NAME=a b")`,
        { details: { where, word } },
      );
    }
    return { name: word.slice(0, eq), value: word.slice(eq + 1) };
  });
}
