/**
 * Command-line parsing for every subcommand: `--flag value`, `--flag=value`, repeatable flags, and
 * everything after `--` passed on untouched. Pure; errors are PODSOCK_ERR_USAGE naming the flag and what
 * was expected.
 */
import { PodsockError, q } from '../errors.js';

export interface FlagSpec {
  /** Takes a value (`--mode proxy`) or is a switch (`--help`). */
  value: boolean;
  /** May be given more than once (values accumulate). */
  repeat?: boolean;
  /** Short alias, e.g. 'h'. */
  short?: string;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string[]>;
  /** Everything after `--`, or [] when there was none. */
  passthrough: string[];
}

/** Parse `argv` (without the subcommand) against `specs`, keyed by long flag name without dashes. */
export function parseArgs(argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>, command: string): ParsedArgs {
  const out: ParsedArgs = { positionals: [], flags: new Map(), passthrough: [] };
  const shortToLong = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short !== undefined) shortToLong.set(spec.short, name);

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.passthrough = argv.slice(i + 1);
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else if (/^-[A-Za-z]$/.test(arg)) {
      name = shortToLong.get(arg.slice(1));
      if (name === undefined) throw usage(command, `unknown option ${q(arg)}`);
    } else {
      out.positionals.push(arg);
      continue;
    }
    const spec = specs[name];
    if (spec === undefined) throw usage(command, `unknown option ${q(`--${name}`)}`);
    let value = 'true';
    if (spec.value) {
      if (inline !== undefined) value = inline;
      else {
        const next = argv[i + 1];
        if (next === undefined || next === '--') throw usage(command, `option ${q(`--${name}`)} expects a value`);
        value = next;
        i++;
      }
    } else if (inline !== undefined) {
      throw usage(command, `option ${q(`--${name}`)} takes no value, got ${q(inline)}`);
    }
    const prev = out.flags.get(name);
    if (prev !== undefined && spec.repeat !== true) throw usage(command, `option ${q(`--${name}`)} given more than once`);
    out.flags.set(name, [...(prev ?? []), value]);
  }
  return out;
}

function usage(command: string, what: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_USAGE', `podsock ${command}: ${what} (see 'podsock ${command} --help')`);
}

/** The single value of a non-repeatable flag, or undefined. */
export function flag(p: ParsedArgs, name: string): string | undefined {
  return p.flags.get(name)?.[0];
}
