/**
 * The [Podsock] section: podsock's own settings, resolved from the section and the command-line flags
 * (a flag wins over the file) into fully defaulted settings, validated here, once. The keys, their
 * flags, defaults and parsers are the table in podsock-keys.ts. Errors name the flag (`--idle-timeout`)
 * or `file:line` and the key; enum errors list every allowed value.
 */
import { PodsockError, q } from '../errors.js';
import { PODSOCK_KEY_DESCRIPTORS, PODSOCK_KEYS, FLAG_NAMES, type PodsockKey, type PodsockValues } from './podsock-keys.js';
import { configError, type ModeContext, type Setting } from './podsock-values.js';
import type { UnitSection } from './unit-syntax.js';

export { PODSOCK_KEYS, FLAG_NAMES, DEFAULT_MAX_CONNECTIONS, type PodsockKey, type PodsockValues } from './podsock-keys.js';
export { MAX_BACKENDS, MAX_HTTP_PATH_LENGTH, MAX_MAX_CONNECTIONS, type Backend, type Mode, type ReadySpec } from './podsock-values.js';

/** The validated, defaulted [Podsock] settings. */
export interface PodsockSettings extends PodsockValues {
  /** Where each key that was set in the file was set (flags are not listed). */
  keyLines: Partial<Record<PodsockKey, number>>;
}

/**
 * Resolves the [Podsock] settings from the section (may be undefined), the file name for messages
 * and the flags (which win). Unknown keys in the section are errors naming file, line and key.
 * Throws PodsockError: 'PODSOCK_ERR_CONFIG' for bad values, 'PODSOCK_ERR_TIMESPAN' for bad time spans.
 */
export function resolvePodsockSettings(
  section: UnitSection | undefined,
  file: string | null,
  flags: Partial<Record<PodsockKey, string>>,
): PodsockSettings {
  const fromFile = new Map<PodsockKey, Setting>();
  const keyLines: Partial<Record<PodsockKey, number>> = {};
  for (const entry of section?.entries ?? []) {
    // An entry from a drop-in names its own file.
    const at = entry.file ?? file;
    if (!(PODSOCK_KEYS as readonly string[]).includes(entry.key)) {
      throw new PodsockError(
        'PODSOCK_ERR_CONFIG',
        `${at ?? '?'}:${entry.line}: unknown key ${q(entry.key)} in section [Podsock] (known keys: ${PODSOCK_KEYS.join(', ')})`,
        { details: { file: at, line: entry.line, section: 'Podsock', key: entry.key } },
      );
    }
    const key = entry.key as PodsockKey;
    // Single-value settings: the last assignment wins, as in systemd.
    const location = `${at ?? '?'}:${entry.line}`;
    fromFile.set(key, { text: entry.value, key, where: `${location}: ${key}`, location });
    keyLines[key] = entry.line;
  }
  const get = (key: PodsockKey): Setting | undefined => {
    const flag = flags[key];
    if (flag !== undefined) return { text: flag, key, where: FLAG_NAMES[key], location: null };
    return fromFile.get(key);
  };

  // Mode is the table's first key; every other key is read against it.
  let ctx: ModeContext = { mode: 'handover', modeWhere: 'the default', modeSetAt: null };
  const values: Partial<Record<keyof PodsockValues, unknown>> = {};
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    const s = get(d.key);
    if (s !== undefined && d.refusedOutside !== null && !d.modes.includes(ctx.mode)) {
      throw configError(s.where, `${d.refusedOutside}, but the mode is ${q(ctx.mode)} (${ctx.modeWhere})`, { value: s.text });
    }
    const value = s === undefined ? d.absent(ctx) : d.parse(s, ctx);
    values[d.field] = value;
    if (d.field === 'mode') ctx = { mode: value as PodsockValues['mode'], modeWhere: s === undefined ? 'the default' : `set by ${s.where}`, modeSetAt: s?.where ?? null };
  }
  // Every field is set: each descriptor sets its own, and PodsockValues has one descriptor per field.
  const all = values as PodsockValues;
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    const s = get(d.key);
    if (s !== undefined && d.check) d.check(all[d.field] as never, all, s);
  }
  return { ...all, keyLines };
}
