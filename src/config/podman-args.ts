/**
 * `podman run`-style argument lists, read the way podman's flag parser (spf13/pflag with
 * interspersed arguments off) reads them: options, then the image, then the command. Used for the
 * `podsock run NAME -- PODMAN_RUN_ARGS...` passthrough and for PodmanArgs= in a .container file.
 *
 * - `--opt=value` never consumes the next word; `--opt value` does when `--opt` takes a value
 *   (podman-options.ts); boolean options never do.
 * - Single-letter options may be clustered (`-it`, `-itp 8080:80`, `-p8080:80`, `-e=A=b`): a value
 *   option takes the rest of the cluster, or the next word when it ends the cluster.
 * - The first word that is not an option (or the word after `--`) is the image; everything after it is
 *   the command, options included, exactly as podman does.
 * - An option podsock does not know is accepted only as `--opt=value` in the passthrough: otherwise it
 *   is impossible to tell whether the next word is its value or the image.
 *
 * Options podsock controls itself are refused (see REFUSED). `--name` is allowed: it is taken out of
 * the option list and returned as `name`, because podsock always passes its own `--name`.
 *
 * Words are never changed or re-joined: each one stays the argv element it was.
 */
import { PodsockError, q } from '../errors.js';
import { OPTION_ALIASES, SHORT_OPTIONS, optionTakesValue } from './podman-options.js';

/** One option as podman will see it: canonical long name (no dashes) and its value, if any. */
export interface PodmanFlag {
  readonly name: string;
  readonly value: string | null;
}

/** A parsed `podman run` argument list. */
export interface PodmanRunArgs {
  /** The options in order, as written, without any `--name`. */
  readonly options: string[];
  /** Every option podman will see, in order (clusters expanded, aliases resolved, `--name` omitted). */
  readonly flags: PodmanFlag[];
  /** The value of the last `--name`, or null. */
  readonly name: string | null;
  /** The first non-option word, or null when there is none. */
  readonly image: string | null;
  /** Everything after the image. */
  readonly command: string[];
}

/** Options that podsock sets itself, with the reason shown to the user. */
const REFUSED: Readonly<Record<string, string>> = {
  detach: 'podsock decides how podman runs the container',
  cidfile: 'podsock writes its own container-id file to stop and remove the container',
  sdnotify: 'podsock sets the notify mode itself; choose readiness with Ready= in [Podsock] or --ready',
  replace: 'podsock always replaces a leftover container of the same name',
  'preserve-fds': 'podsock passes the socket-activation file descriptors itself',
  'preserve-fd': 'podsock passes the socket-activation file descriptors itself',
  help: 'it would print help instead of running the container',
};

// strconv.ParseBool(), which pflag uses for boolean options.
const FALSE_WORDS = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

function refuse(where: string, shown: string, reason: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_CONFIG', `${where}: option ${q(shown)} cannot be used with podsock: ${reason}`, {
    details: { where, option: shown },
  });
}

function usage(where: string, message: string, details: Record<string, unknown>): PodsockError {
  return new PodsockError('PODSOCK_ERR_CONFIG', `${where}: ${message}`, { details: { where, ...details } });
}

function checkFlag(flag: PodmanFlag, shown: string, where: string): void {
  const reason = REFUSED[flag.name];
  if (reason !== undefined) throw refuse(where, shown, reason);
  if (flag.name === 'rm' && flag.value !== null && FALSE_WORDS.has(flag.value)) {
    throw refuse(where, shown, 'podsock removes the container when it stops');
  }
  if (flag.name === 'name' && (flag.value === null || flag.value === '')) {
    throw usage(where, `option ${q(shown)} needs a container name`, { option: shown });
  }
}

type Mode = 'run' | 'options';

function parse(args: readonly string[], where: string, mode: Mode): PodmanRunArgs {
  const options: string[] = [];
  const flags: PodmanFlag[] = [];
  let name: string | null = null;

  const add = (raw: string[], parsed: PodmanFlag[], shown: string): void => {
    for (const f of parsed) checkFlag(f, shown, where);
    const only = parsed.length === 1 ? parsed[0] : undefined;
    if (only !== undefined && only.name === 'name') {
      name = only.value;
      return;
    }
    options.push(...raw);
    flags.push(...parsed);
  };

  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') {
      if (mode === 'options') {
        throw usage(where, `'--' ends the options; PodmanArgs= may only contain options`, { word: a });
      }
      return { options, flags, name, image: args[i + 1] ?? null, command: args.slice(i + 2) };
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const written = eq === -1 ? a.slice(2) : a.slice(2, eq);
      if (written === '') throw usage(where, `invalid option ${q(a)}`, { word: a });
      const long = OPTION_ALIASES[written] ?? written;
      const takesValue = optionTakesValue(long);
      if (eq !== -1) {
        add([a], [{ name: long, value: a.slice(eq + 1) }], a);
      } else if (takesValue === false) {
        add([a], [{ name: long, value: null }], a);
      } else if (takesValue === true) {
        const value = args[i + 1];
        if (value === undefined) throw usage(where, `option ${q(a)} needs a value`, { option: a });
        add([a, value], [{ name: long, value }], a);
        i++;
      } else if (mode === 'options') {
        // PodmanArgs= has no image, so a following non-option word can only be this option's value.
        const next = args[i + 1];
        if (next !== undefined && !next.startsWith('-')) {
          add([a, next], [{ name: long, value: next }], a);
          i++;
        } else {
          add([a], [{ name: long, value: null }], a);
        }
      } else {
        throw usage(
          where,
          `unknown podman run option ${q(a)}: write it as '${a}=VALUE' (or '${a}=true' for a switch) so that podsock can tell where the image is`,
          { option: a },
        );
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      const parsed: PodmanFlag[] = [];
      const raw = [a];
      for (let j = 1; j < a.length; j++) {
        const letter = a[j] as string;
        const long = SHORT_OPTIONS[letter];
        if (long === undefined) {
          throw usage(where, `unknown podman run option '-${letter}' in ${q(a)}`, { option: a });
        }
        let rest = a.slice(j + 1);
        const hasEq = rest.startsWith('=');
        if (hasEq) rest = rest.slice(1);
        if (optionTakesValue(long) === true) {
          if (rest !== '' || hasEq) {
            parsed.push({ name: long, value: rest });
          } else {
            const value = args[i + 1];
            if (value === undefined) throw usage(where, `option '-${letter}' needs a value`, { option: a });
            parsed.push({ name: long, value });
            raw.push(value);
            i++;
          }
          break;
        }
        if (hasEq) {
          parsed.push({ name: long, value: rest });
          break;
        }
        parsed.push({ name: long, value: null });
      }
      add(raw, parsed, a);
      continue;
    }
    if (mode === 'options') {
      throw usage(where, `${q(a)} is not an option; PodmanArgs= may only contain options (set the image with Image= and the command with Exec=)`, { word: a });
    }
    return { options, flags, name, image: a, command: args.slice(i + 1) };
  }
  return { options, flags, name, image: null, command: [] };
}

/**
 * Parses `podman run` arguments as a user would type them after `podman run`: options, then the
 * image, then the command. `where` prefixes messages (e.g. "arguments after '--'"). Throws
 * PodsockError('PODSOCK_ERR_CONFIG') for a refused option, an option missing its value, an unknown
 * short option, or an unknown long option written without '='.
 */
export function parsePodmanRunArgs(args: readonly string[], where: string): PodmanRunArgs {
  return parse(args, where, 'run');
}

/**
 * Parses a list that must contain only `podman run` options (PodmanArgs=). Unknown long options are
 * accepted; one followed by a word not starting with '-' takes that word as its value. A non-option
 * word is an error. `image` is always null and `command` empty in the result.
 */
export function parsePodmanOptions(args: readonly string[], where: string): PodmanRunArgs {
  return parse(args, where, 'options');
}

/** Facts podsock needs from the final option list (see ServiceConfig in load.ts). */
export interface PodmanOptionFacts {
  /** Every --publish/-p value, in order. */
  readonly publishPorts: string[];
  /** The first --network/--net value, or null (podman's default network). */
  readonly network: string | null;
  /** The last --pull value, or null (podman's default policy, "missing"). */
  readonly pull: string | null;
  /** Whether a health check is configured: a --health-cmd other than "none", and no --no-healthcheck. */
  readonly hasHealthCheck: boolean;
}

/** Reads the facts above from parsed flags; later options win where podman lets them. */
export function optionFacts(flags: readonly PodmanFlag[]): PodmanOptionFacts {
  const publishPorts: string[] = [];
  let network: string | null = null;
  let pull: string | null = null;
  let healthCmd: string | null = null;
  let noHealthcheck = false;
  for (const f of flags) {
    if (f.name === 'publish' && f.value !== null) publishPorts.push(f.value);
    else if (f.name === 'network' && f.value !== null && network === null) network = f.value;
    else if (f.name === 'pull' && f.value !== null) pull = f.value;
    else if (f.name === 'health-cmd') healthCmd = f.value;
    else if (f.name === 'no-healthcheck') noHealthcheck = f.value === null || !FALSE_WORDS.has(f.value);
  }
  const hasHealthCheck = !noHealthcheck && healthCmd !== null && healthCmd !== '' && healthCmd.toLowerCase() !== 'none';
  return { publishPorts, network, pull, hasHealthCheck };
}
