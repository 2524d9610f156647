/**
 * Command-line checks the benchmarks share: --help, an integer option with a lower bound and a list
 * of variant names. Each error names the option and what was expected; `usage` is appended when given.
 */

/** With --help: prints `usage` and exits 0. */
export function exitOnHelp(help: boolean | undefined, usage: string): void {
  if (help !== true) return;
  console.log(usage);
  process.exit(0);
}

/** `raw` as an integer >= `min`, or an error naming --`name`. */
export function intOption(name: string, raw: string, min: number, usage: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`Expected --${name} to be an integer >= ${min}, got '${raw}'\n${usage}`);
  return n;
}

/** The comma-separated names in `raw`, each once, each one of `known`; unknown names are an error. */
export function variantList<T extends string>(raw: string, known: readonly T[], usage: string | null): T[] {
  const names = raw.split(',').filter((x) => x !== '');
  for (const v of names) {
    if (!(known as readonly string[]).includes(v)) throw new Error(`Unknown --variants entry '${v}': expected one of ${known.join(', ')}${usage === null ? '' : `\n${usage}`}`);
  }
  return [...new Set(names)] as T[];
}
