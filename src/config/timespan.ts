/**
 * systemd time spans (systemd.time(7)), parsed with the grammar of systemd's parse_time()
 * (src/basic/time-util.c) and returned in milliseconds, the one unit used inside podsock.
 *
 * Grammar, as in parse_time(): optional whitespace, then one or more parts `NUMBER [WS] [UNIT]`,
 * separated by optional whitespace ("1h 30min", "1h30min", "2min30s", "5 min"). NUMBER is decimal
 * digits with an optional fraction (".5s", "1.5h"; "5." is rejected). A part without a unit is in
 * seconds (parse_sec()). The whole text may instead be "infinity". Negative values are rejected.
 * Units are matched by prefix in systemd's table order, so "5ms" is milliseconds and "5m" minutes;
 * "M" is months and "m" minutes (case matters, as in systemd).
 *
 * Units below a millisecond are kept exactly (microseconds, as systemd does) and the total is rounded
 * UP to whole milliseconds, so "100us" is 1 ms and never 0.
 *
 * Limit: at most MAX_TIMESPAN_MS (2^31-1 ms, about 24.8 days). That is the largest delay Node's
 * setTimeout() honours (larger ones fire after 1 ms, with a TimeoutOverflowWarning), so every value
 * this module returns can be handed to a timer as is. Longer spans are rejected with a message that
 * suggests 'infinity'.
 */
import { PodsockError, q } from '../errors.js';

/** The largest span parseTimespan() accepts: the largest delay setTimeout() honours. */
export const MAX_TIMESPAN_MS = 2 ** 31 - 1;

/** Longest input we look at (this also bounds the BigInt arithmetic below). */
const MAX_TEXT_LENGTH = 256;

const USEC_PER_MSEC = 1000n;
const USEC_PER_SEC = 1000n * USEC_PER_MSEC;
const USEC_PER_MINUTE = 60n * USEC_PER_SEC;
const USEC_PER_HOUR = 60n * USEC_PER_MINUTE;
const USEC_PER_DAY = 24n * USEC_PER_HOUR;
const USEC_PER_WEEK = 7n * USEC_PER_DAY;
// time-util.h: a month is 30.44 days, a year 365.25 days.
const USEC_PER_MONTH = 2629800n * USEC_PER_SEC;
const USEC_PER_YEAR = 31557600n * USEC_PER_SEC;

// Order matters: systemd's extract_multiplier() takes the first entry that is a prefix of the rest
// ("msec"/"ms" before "m", "months" before "m"). Copied from parse_time()'s table.
const UNITS: ReadonlyArray<readonly [string, bigint]> = [
  ['seconds', USEC_PER_SEC],
  ['second', USEC_PER_SEC],
  ['sec', USEC_PER_SEC],
  ['s', USEC_PER_SEC],
  ['minutes', USEC_PER_MINUTE],
  ['minute', USEC_PER_MINUTE],
  ['min', USEC_PER_MINUTE],
  ['months', USEC_PER_MONTH],
  ['month', USEC_PER_MONTH],
  ['M', USEC_PER_MONTH],
  ['msec', USEC_PER_MSEC],
  ['ms', USEC_PER_MSEC],
  ['m', USEC_PER_MINUTE],
  ['hours', USEC_PER_HOUR],
  ['hour', USEC_PER_HOUR],
  ['hr', USEC_PER_HOUR],
  ['h', USEC_PER_HOUR],
  ['days', USEC_PER_DAY],
  ['day', USEC_PER_DAY],
  ['d', USEC_PER_DAY],
  ['weeks', USEC_PER_WEEK],
  ['week', USEC_PER_WEEK],
  ['w', USEC_PER_WEEK],
  ['years', USEC_PER_YEAR],
  ['year', USEC_PER_YEAR],
  ['y', USEC_PER_YEAR],
  ['usec', 1n],
  ['us', 1n],
  ['\u03bcs', 1n], // Greek small letter mu
  ['\u00b5s', 1n], // micro sign
];

// systemd's WHITESPACE: " \t\n\r" (not JavaScript's wider \s).
const WS = new Set([' ', '\t', '\n', '\r']);

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && WS.has(text[i] as string)) i++;
  return i;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function invalid(text: string, what: string): PodsockError {
  return new PodsockError(
    'PODSOCK_ERR_TIMESPAN',
    `Invalid time span for ${what}: ${q(text)} (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`,
    { details: { what, value: text } },
  );
}

/** Microseconds, or null for "infinity"; throws the syntax error. Mirrors parse_time(). */
function parseUsec(text: string, what: string): bigint | null {
  let i = skipWhitespace(text, 0);
  if (text.startsWith('infinity', i)) {
    if (skipWhitespace(text, i + 'infinity'.length) !== text.length) throw invalid(text, what);
    return null;
  }
  let total = 0n;
  let something = false;
  for (;;) {
    i = skipWhitespace(text, i);
    if (i === text.length) {
      if (!something) throw invalid(text, what);
      return total;
    }
    // strtoll() would take a sign; systemd rejects '-' explicitly and we accept an explicit '+'.
    if (text[i] === '+') i++;
    const intStart = i;
    while (isDigit(text[i])) i++;
    const intDigits = text.slice(intStart, i);
    let fracDigits: string | null = null;
    if (text[i] === '.') {
      const fracStart = ++i;
      while (isDigit(text[i])) i++;
      fracDigits = text.slice(fracStart, i);
      // "5." / "3.sec" / "3. 1" are rejected, as in parse_time().
      if (fracDigits.length === 0) throw invalid(text, what);
    } else if (intDigits.length === 0) {
      throw invalid(text, what);
    }
    const unitStart = skipWhitespace(text, i);
    let multiplier = USEC_PER_SEC;
    let next = -1;
    for (const [suffix, usec] of UNITS) {
      if (text.startsWith(suffix, unitStart)) {
        multiplier = usec;
        next = unitStart + suffix.length;
        break;
      }
    }
    if (next === -1) {
      // No unit: fine at the end or before whitespace ("1 2" is 3s, as in systemd), but "5x" and
      // "12.34.56" are not (parse_time: `s == p && *s != 0`).
      if (unitStart === i && i < text.length) throw invalid(text, what);
      next = unitStart;
    }
    total += BigInt(intDigits.length > 0 ? intDigits : '0') * multiplier;
    if (fracDigits !== null) {
      // Each fractional digit is worth a tenth of the previous one, truncated to whole microseconds.
      let m = multiplier / 10n;
      for (const d of fracDigits) {
        total += BigInt(d) * m;
        m /= 10n;
      }
    }
    something = true;
    i = next;
  }
}

/**
 * Parses a systemd time span into milliseconds, rounding up; "infinity" gives null.
 *
 * `what` names the setting for the message (e.g. "IdleTimeout" or "--idle-timeout"). Throws
 * PodsockError('PODSOCK_ERR_TIMESPAN') for anything parse_sec() would reject (empty, negative,
 * unknown unit, "5.", "1.2.3") and for spans above MAX_TIMESPAN_MS. Never throws anything else.
 */
export function parseTimespan(text: string, what: string): number | null {
  if (text.length > MAX_TEXT_LENGTH) {
    throw new PodsockError(
      'PODSOCK_ERR_TIMESPAN',
      `Invalid time span for ${what}: ${q(text.slice(0, 40) + '...')} is longer than ${MAX_TEXT_LENGTH} characters`,
      { details: { what, length: text.length } },
    );
  }
  const usec = parseUsec(text, what);
  if (usec === null) return null;
  const ms = (usec + USEC_PER_MSEC - 1n) / USEC_PER_MSEC;
  if (ms > BigInt(MAX_TIMESPAN_MS)) {
    throw new PodsockError(
      'PODSOCK_ERR_TIMESPAN',
      `Time span for ${what} is too large: ${q(text)} (at most ${q(formatTimespan(MAX_TIMESPAN_MS))}; use 'infinity' for no limit)`,
      { details: { what, value: text } },
    );
  }
  return Number(ms);
}

// format_timespan()'s table (time-util.c), largest first; "month" is spelled out there too.
const FORMAT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['y', 31557600000],
  ['month', 2629800000],
  ['w', 604800000],
  ['d', 86400000],
  ['h', 3600000],
  ['min', 60000],
  ['s', 1000],
  ['ms', 1],
];

/**
 * Formats milliseconds the way systemd's format_timespan() does at millisecond accuracy:
 * "1h 30min", "1min 30s", "500ms", "0"; null gives "infinity". The result parses back to the same
 * value with parseTimespan(). Throws PODSOCK_ERR_INTERNAL for a negative or non-integer input (a bug).
 */
export function formatTimespan(ms: number | null): string {
  if (ms === null) return 'infinity';
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `formatTimespan() needs a non-negative integer, got ${q(ms)}`);
  }
  if (ms === 0) return '0';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of FORMAT_UNITS) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      rest -= n * size;
      parts.push(`${n}${unit}`);
    }
  }
  return parts.join(' ');
}
