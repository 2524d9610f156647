/**
 * The command-line flags of the [Podsock] keys, shared by `run`, `check` and `generate`, and their
 * help lines: all made from the key table (config/podsock-keys.ts).
 */
import { PODSOCK_KEY_DESCRIPTORS, type KeyDescriptor, type PodsockKey } from '../config/podsock-keys.js';
import { flag, type FlagSpec, type ParsedArgs } from './args.js';

/** The flag specs, keyed by the flag's name without dashes ('idle-timeout'). */
export const PODSOCK_FLAGS: Readonly<Record<string, FlagSpec>> = Object.fromEntries(PODSOCK_KEY_DESCRIPTORS.map((d) => [d.flag.slice(2), { value: true }]));

/** The key a flag sets, by the flag's name without dashes. */
export const KEY_OF_FLAG: Readonly<Record<string, PodsockKey>> = Object.fromEntries(PODSOCK_KEY_DESCRIPTORS.map((d) => [d.flag.slice(2), d.key]));

/** The [Podsock] values given on the command line, by key (LoadOptions.flags). */
export function podsockFlags(p: ParsedArgs): Partial<Record<PodsockKey, string>> {
  const out: Partial<Record<PodsockKey, string>> = {};
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    const v = flag(p, d.flag.slice(2));
    if (v !== undefined) out[d.key] = v;
  }
  return out;
}

/** Where an option's description starts, the usual column of the `(Key=)` note, and the widest line. */
const DESCRIPTION_COLUMN = 27;
const NOTE_COLUMN = 80;
const MAX_WIDTH = 97;

/**
 * One key's option in a help text: `  --flag VALUE` and its description (on the next line when the
 * two do not fit side by side), then `(Key=)` at NOTE_COLUMN, or ending at MAX_WIDTH when it would
 * run past it. scripts/build-man.ts reads this layout (see its module comment).
 */
export function optionHelp(d: KeyDescriptor): string[] {
  const head = `  ${d.flag} ${d.metavar}`;
  const text = d.help.map((l, i) => (i === 0 && !d.modes.includes('handover') ? `Proxy mode: ${l}` : l));
  const indent = ' '.repeat(DESCRIPTION_COLUMN);
  const lines = head.length + 2 <= DESCRIPTION_COLUMN ? [head.padEnd(DESCRIPTION_COLUMN) + text[0], ...text.slice(1).map((l) => indent + l)] : [head, ...text.map((l) => indent + l)];
  const note = `(${d.key}=)`;
  const last = lines.length - 1;
  const body = lines[last] as string;
  const column = NOTE_COLUMN + note.length <= MAX_WIDTH ? NOTE_COLUMN : MAX_WIDTH - note.length;
  lines[last] = body.padEnd(Math.max(column, body.length + 2)) + note;
  return lines;
}

/** Every key's option, in the table's order, as lines of a help text. */
export function podsockOptionsHelp(): string {
  return PODSOCK_KEY_DESCRIPTORS.flatMap(optionHelp).join('\n');
}
