/**
 * systemd unit-file syntax (systemd.syntax(7)), read the way systemd's config_parse() reads it
 * (src/shared/conf-parser.c), into sections of ordered key/value entries. Nothing here knows what a
 * key means; container-section.ts and podsock-section.ts give them meaning.
 *
 * Rules, each as in config_parse()/parse_line():
 * - Lines end at "\n", "\r\n" or "\r" (read_line()). A UTF-8 byte-order mark at the start is skipped.
 * - A line whose first non-whitespace character is '#' or ';' is a comment, also in the middle of a
 *   continuation (systemd skips it before looking at continuations).
 * - A line ending in an odd number of backslashes continues on the next line; that last backslash is
 *   replaced by a space and the next line appended as is. Trailing whitespace after the backslash
 *   means it is not a continuation.
 * - Whitespace (" \t\n\r", systemd's WHITESPACE) is stripped from both ends of the joined line;
 *   empty lines are skipped.
 * - "[Name]" starts (or continues: repeated headers merge) a section.
 * - "Key=Value": whitespace around the key and around the value is stripped; keys are case-sensitive.
 *
 * Where podsock is stricter than systemd, which only warns and ignores the line, it throws
 * PODSOCK_ERR_CONFIG naming `file:line`: an assignment before any section, a line without '=', an
 * empty key, an invalid section header, a NUL byte, bytes that are not UTF-8, a file over
 * MAX_UNIT_FILE_BYTES or a (joined) line over MAX_LINE_LENGTH characters.
 *
 * Repeated keys accumulate in order. An empty assignment ("Key=") removes every earlier entry of that
 * key in the section and is not kept itself: for list settings that resets the list, for single-value
 * settings it restores the default - systemd's meaning in both cases.
 *
 * An entry's `line` is the first physical line of its (possibly continued) assignment, `file` the
 * file it was read from.
 *
 * Drop-ins: parseUnitText(text, dropin, base) reads `text` as if it were appended to the file(s)
 * already parsed into `base`, which is what systemd does with each drop-in (systemd.unit(5),
 * "drop-in"): sections merge, list values accumulate, an empty assignment resets what the files
 * before set, and the last assignment of a single value wins.
 */
import { PodsockError, q } from '../errors.js';

/** Largest configuration file podsock reads. */
export const MAX_UNIT_FILE_BYTES = 1024 * 1024;
/** Longest logical line (after joining continuations), in UTF-16 code units. */
export const MAX_LINE_LENGTH = 64 * 1024;

/** One `Key=Value` assignment. */
export interface UnitEntry {
  readonly key: string;
  readonly value: string;
  /** 1-based line number where the assignment starts. */
  readonly line: number;
  /** The file the assignment is in (a drop-in's, when it comes from one); unset only in entries made by hand. */
  readonly file?: string;
}

/** One section; repeated headers of the same name are merged into the first. */
export interface UnitSection {
  readonly name: string;
  /** 1-based line of the first header of this name. */
  readonly line: number;
  /** The file of that header. */
  readonly file?: string;
  readonly entries: UnitEntry[];
}

/** A parsed file: its name (as used in messages) and its sections in order of first appearance. */
export interface UnitFile {
  readonly file: string;
  readonly sections: UnitSection[];
  /** Every file read into it, in order: the file, then its drop-ins (parseUnitText() always sets it). */
  readonly files?: readonly string[];
}

const WHITESPACE = ' \t\n\r';
const COMMENT_CHARS = '#;';

function isWs(c: string | undefined): boolean {
  return c !== undefined && WHITESPACE.includes(c);
}

function strip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isWs(s[start])) start++;
  while (end > start && isWs(s[end - 1])) end--;
  return s.slice(start, end);
}

function configError(file: string, line: number, message: string, details: Record<string, unknown> = {}): PodsockError {
  return new PodsockError('PODSOCK_ERR_CONFIG', `${file}:${line}: ${message}`, { details: { file, line, ...details } });
}

/** Shortened for messages: a peer-controlled line could be 64 KiB long. */
function excerpt(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// Section names: anything printable without brackets. systemd itself accepts more, but such a name
// could never match a section podsock knows.
// eslint-disable-next-line no-control-regex
const INVALID_SECTION_CHARS = /[[\]\u0000-\u001f\u007f]/;

/**
 * Splits text into physical lines the way read_line() does: "\r\n", "\n" and "\r" all end a line.
 * A final line terminator does not start another (empty) line.
 */
function physicalLines(text: string): string[] {
  const lines = text.split(/\r\n|\n|\r/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function endsWithContinuation(s: string): boolean {
  let n = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

/**
 * Parses unit-file text. `file` is only used in messages and in the result. With `base`, the text is
 * a drop-in read on top of it (see the module comment); the result is a new UnitFile named as `base`
 * and `base` is left as it was. Throws PodsockError ('PODSOCK_ERR_CONFIG') naming `file:line` for
 * every syntax error; never throws anything else.
 */
export function parseUnitText(text: string, file: string, base?: UnitFile): UnitFile {
  if (text.includes('\u0000')) {
    const line = text.slice(0, text.indexOf('\u0000')).split(/\r\n|\n|\r/).length;
    throw configError(file, line, 'contains a NUL byte; is this a text file?');
  }
  if (text.startsWith('\ufeff')) text = text.slice(1);

  const sections: UnitSection[] = (base?.sections ?? []).map((sec) => ({ ...sec, entries: [...sec.entries] }));
  const byName = new Map<string, UnitSection>(sections.map((sec) => [sec.name, sec]));
  // A drop-in starts outside of any section, as every file does.
  let current: UnitSection | null = null;

  const parseLogical = (raw: string, line: number): void => {
    const l = strip(raw);
    if (l === '' || COMMENT_CHARS.includes(l[0] as string)) return;
    if (l.startsWith('[')) {
      if (!l.endsWith(']') || l.length < 2) {
        throw configError(file, line, `invalid section header ${q(excerpt(l))} (expected '[Name]')`);
      }
      const name = l.slice(1, -1);
      if (name === '' || INVALID_SECTION_CHARS.test(name)) {
        throw configError(file, line, `invalid section header ${q(excerpt(l))} (expected '[Name]')`);
      }
      current = byName.get(name) ?? null;
      if (current === null) {
        current = { name, line, file, entries: [] };
        byName.set(name, current);
        sections.push(current);
      }
      return;
    }
    const eq = l.indexOf('=');
    if (eq === -1) {
      throw configError(file, line, `line ${q(excerpt(l))} is neither a section header nor a Key=Value assignment`);
    }
    const key = strip(l.slice(0, eq));
    if (key === '') {
      throw configError(file, line, `missing key name before '=' in ${q(excerpt(l))}`);
    }
    if (current === null) {
      throw configError(file, line, `assignment ${q(excerpt(l))} is outside of any section (add a section header such as '[Container]' first)`, { key });
    }
    const value = strip(l.slice(eq + 1));
    const section: UnitSection = current;
    if (value === '') {
      // Empty assignment: reset (systemd.syntax(7), "Empty assignments reset the list").
      const kept = section.entries.filter((e) => e.key !== key);
      section.entries.length = 0;
      section.entries.push(...kept);
      return;
    }
    section.entries.push({ key, value, line, file });
  };

  const lines = physicalLines(text);
  let continuation: string | null = null;
  let continuationLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const physical = lines[i] as string;
    const lineNo = i + 1;
    if (physical.length > MAX_LINE_LENGTH) {
      throw configError(file, lineNo, `line is longer than ${MAX_LINE_LENGTH} characters`);
    }
    let p = 0;
    while (isWs(physical[p])) p++;
    if (p < physical.length && COMMENT_CHARS.includes(physical[p] as string)) continue;

    let joined: string;
    if (continuation !== null) {
      if (continuation.length + physical.length > MAX_LINE_LENGTH) {
        throw configError(file, continuationLine, `continued line is longer than ${MAX_LINE_LENGTH} characters`);
      }
      joined = continuation + physical;
    } else {
      joined = physical;
      continuationLine = lineNo;
    }
    if (endsWithContinuation(joined)) {
      continuation = `${joined.slice(0, -1)} `;
      continue;
    }
    continuation = null;
    parseLogical(joined, continuationLine);
  }
  // A continuation still open at the end of the file is parsed as it stands (config_parse() does too).
  if (continuation !== null) parseLogical(continuation, continuationLine);

  return base === undefined ? { file, sections, files: [file] } : { file: base.file, sections, files: [...(base.files ?? [base.file]), file] };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses unit-file bytes: checks the size limit and that the bytes are UTF-8, then parseUnitText().
 * Throws PodsockError('PODSOCK_ERR_CONFIG') naming the file.
 */
export function parseUnitBytes(bytes: Uint8Array, file: string, base?: UnitFile): UnitFile {
  if (bytes.length > MAX_UNIT_FILE_BYTES) {
    throw new PodsockError(
      'PODSOCK_ERR_CONFIG',
      `${file}: file is larger than ${MAX_UNIT_FILE_BYTES} bytes`,
      { details: { file, size: bytes.length } },
    );
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch (cause) {
    // Find the line for the message: decode leniently and look for the replacement character.
    const lenient = new TextDecoder('utf-8').decode(bytes);
    const at = lenient.indexOf('\ufffd');
    const line = at === -1 ? 1 : lenient.slice(0, at).split(/\r\n|\n|\r/).length;
    throw new PodsockError('PODSOCK_ERR_CONFIG', `${file}:${line}: file is not valid UTF-8`, {
      cause,
      details: { file, line },
    });
  }
  return parseUnitText(text, file, base);
}

/** The section called `name`, or undefined. */
export function findSection(unit: UnitFile, name: string): UnitSection | undefined {
  return unit.sections.find((s) => s.name === name);
}
