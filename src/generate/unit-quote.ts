/**
 * Writing values into unit files so that systemd (and podsock's own reader) reads back exactly the
 * value meant. Three layers, applied in this order by the callers:
 *
 * - quoteWord(): one word for a setting that systemd splits into words (Exec*=, Environment=, and in
 *   .container files Exec=, PodmanArgs=, Label=): split-words.ts (extract_first_word() with
 *   EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) turns the result back into the same single word.
 * - escapeSpecifiers(): '%' becomes '%%' in settings where systemd expands specifiers
 *   (systemd.unit(5), "Specifiers"), and in .container values, where podsock expands them the same way.
 * - escapeDollar(): '$' becomes '$$' in Exec*= lines, where systemd expands $VAR and ${VAR}
 *   (systemd.service(5), "Command lines").
 *
 * Pure; never throws.
 */

// Words made only of these characters need no quoting in any of the settings above.
const PLAIN = /^[A-Za-z0-9_@%+=:,./$-]+$/;

const C_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '"': '\\"',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '\f': '\\f',
  '\b': '\\b',
  '\u0007': '\\a',
};

/**
 * One word, quoted when it has to be: double quotes around it, and C escapes (cunescape_one()) for
 * backslash, double quote and control characters. The empty string becomes `""` (an empty word).
 */
export function quoteWord(word: string): string {
  if (PLAIN.test(word)) return word;
  let out = '"';
  for (const ch of word) {
    const simple = C_ESCAPES[ch];
    if (simple !== undefined) out += simple;
    else if (ch < ' ' || ch === '\u007f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Doubles every '%' so that systemd's specifier expansion gives the text back. */
export function escapeSpecifiers(text: string): string {
  return text.replaceAll('%', '%%');
}

/** Doubles every '$' so that systemd's variable expansion in command lines gives the text back. */
export function escapeDollar(text: string): string {
  return text.replaceAll('$', () => '$$');
}

/** A command line for ExecStart= and friends: each word escaped for specifiers and variables, then quoted. */
export function execLine(argv: readonly string[]): string {
  return argv.map((w) => quoteWord(escapeDollar(escapeSpecifiers(w)))).join(' ');
}

/**
 * A value that a single-value setting reads literally (after whitespace stripping, systemd.syntax(7)):
 * true when writing `Key=value` gives back exactly `value`. False for an empty value (that resets the
 * setting), surrounding whitespace (stripped), a line break, a trailing backslash (a continuation) and
 * surrounding double quotes (Quadlet's Lookup() removes one pair).
 */
export function isLiteralValue(value: string): boolean {
  if (value === '' || value.trim() !== value) return false;
  if (value.includes('\n') || value.includes('\r') || value.includes('\u0000')) return false;
  if (value.endsWith('\\')) return false;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) return false;
  return true;
}
