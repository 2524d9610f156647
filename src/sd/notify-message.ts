/**
 * The sd_notify message format, pure: one datagram holding newline-separated KEY=VALUE lines, a trailing
 * newline implied (sd_notify(3)). Parsing is stricter than systemd's manager, which skips lines it does
 * not understand: messages parsed here come from a container, i.e. from a peer podsock does not trust,
 * and are relayed to systemd, so anything odd is refused whole and the reason names the line.
 */
import { PodsockError, q } from '../errors.js';

/** systemd's NOTIFY_BUFFER_MAX (= PIPE_BUF, src/basic/constants.h): larger messages are dropped. */
export const NOTIFY_MAX_BYTES = 4096;

/** Result of parsing one datagram: the fields in order (duplicates kept), or why it was refused. */
export type ParsedNotifyMessage = { ok: true; fields: Array<[string, string]> } | { ok: false; reason: string };

const KEY = /^[A-Z0-9_]+$/;
/** Longest excerpt of peer-controlled text quoted in a reason (reasons end up in logs). */
const EXCERPT_MAX = 64;

function excerpt(text: string): string {
  return q(text.length > EXCERPT_MAX ? `${text.slice(0, EXCERPT_MAX)}…` : text);
}

// fatal: invalid UTF-8 throws instead of becoming U+FFFD. ignoreBOM: a BOM is kept, and then fails the key check.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parse one notify datagram. Refused (ok: false, with a reason naming the line): an empty payload, an
 * embedded NUL (a single trailing NUL is tolerated, as systemd does), invalid UTF-8, an empty line other
 * than the one implied trailing newline, a line without '=', an empty key, or a key that is not
 * /^[A-Z0-9_]+$/. Values may be empty and may contain '='. Duplicate keys are kept in order. The size
 * limit is the transport's job (a datagram over NOTIFY_MAX_BYTES arrives truncated); this function takes
 * any length. Never throws.
 */
export function parseNotifyMessage(data: Buffer): ParsedNotifyMessage {
  let bytes = data;
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0) bytes = bytes.subarray(0, bytes.length - 1);
  if (bytes.length === 0) return { ok: false, reason: 'the message is empty' };
  const nul = bytes.indexOf(0);
  if (nul !== -1) return { ok: false, reason: `the message contains a NUL byte at offset ${nul}` };
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: 'the message is not valid UTF-8' };
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the one implied trailing newline
  const fields: Array<[string, string]> = [];
  for (const [i, line] of lines.entries()) {
    const n = i + 1;
    if (line === '') return { ok: false, reason: `line ${n} is empty` };
    const eq = line.indexOf('=');
    if (eq === -1) return { ok: false, reason: `line ${n} ${excerpt(line)} has no '='` };
    const key = line.slice(0, eq);
    if (key === '') return { ok: false, reason: `line ${n} ${excerpt(line)} has an empty key` };
    if (!KEY.test(key)) return { ok: false, reason: `line ${n} has an invalid key ${excerpt(key)} (expected A-Z, 0-9 and _)` };
    fields.push([key, line.slice(eq + 1)]);
  }
  return { ok: true, fields };
}

/**
 * Format fields as a notify message ("K=V" lines joined by '\n', no trailing newline). Throws
 * PodsockError('PODSOCK_ERR_NOTIFY') naming the key for a key that is not /^[A-Z0-9_]+$/ or a value
 * containing a newline or a NUL (either would change or break the message), and for an empty field list.
 * The byte limit is checked by the sender (notify-client), which knows it is about to send.
 */
export function formatNotifyMessage(fields: Array<[string, string]> | Record<string, string>): string {
  const list = Array.isArray(fields) ? fields : Object.entries(fields);
  if (list.length === 0) throw new PodsockError('PODSOCK_ERR_NOTIFY', 'Refusing to send an empty notify message');
  const lines: string[] = [];
  for (const [key, value] of list) {
    if (!KEY.test(key)) {
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Invalid notify key ${excerpt(key)}: expected A-Z, 0-9 and _`, {
        details: { key },
      });
    }
    if (value.includes('\n') || value.includes('\0')) {
      const what = value.includes('\n') ? 'a newline' : 'a NUL byte';
      throw new PodsockError('PODSOCK_ERR_NOTIFY', `Invalid value for notify key ${q(key)}: it contains ${what}`, {
        details: { key },
      });
    }
    lines.push(`${key}=${value}`);
  }
  return lines.join('\n');
}
