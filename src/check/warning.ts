/**
 * A finding of `podsock check`: data, not output. Rules return these; the CLI prints them one per
 * line. `code` is stable (tests and scripts match on it); `message` is for people.
 */
export interface CheckWarning {
  /** Stable identifier, e.g. 'publish-in-handover'. */
  code: string;
  message: string;
  /** The file and line the warning is about, when there is one. */
  file?: string;
  line?: number;
}

/** `file:line: warning: message [code]`, the way compilers print it; without a file just `warning: ...`. */
export function formatWarning(w: CheckWarning): string {
  const at = w.file === undefined ? '' : w.line === undefined ? `${w.file}: ` : `${w.file}:${w.line}: `;
  return `${at}warning: ${w.message} [${w.code}]`;
}

/** The warning's location from a ServiceConfig keyLines entry, if the key was set in a file. */
export function locationOf(keyLines: Readonly<Record<string, { file: string; line: number }>>, ...keys: string[]): Pick<CheckWarning, 'file' | 'line'> {
  for (const k of keys) {
    const at = keyLines[k];
    if (at !== undefined) return { file: at.file, line: at.line };
  }
  return {};
}
