/**
 * The text of NAME.container for `podsock generate`: a Quadlet-style [Container] section made from
 * the `podman run` arguments after `--`, and a [Podsock] section with every podsock setting written
 * out, each with a comment (both from the key table, config/podsock-keys.ts). loadConfig() on the result gives the same image, command, container
 * name and podman options (per option kind, in order; see container-keys.ts) as `podsock run NAME --
 * ARGS` would. podsock expands %-specifiers in .container values (config/specifiers.ts), so every
 * '%' in a value is written as '%%'. Pure.
 */
import { parsePodmanRunArgs } from '../config/podman-args.js';
import { PODSOCK_KEY_DESCRIPTORS } from '../config/podsock-keys.js';
import type { PodsockSettings } from '../config/podsock-section.js';
import { PodsockError, q } from '../errors.js';
import { optionsToKeys } from './container-keys.js';
import { escapeSpecifiers, isLiteralValue, quoteWord } from './unit-quote.js';

export interface ContainerFileInput {
  /** The service NAME. */
  name: string;
  /** The words after `--`: options, image, command. */
  podmanArgs: readonly string[];
  /** The validated [Podsock] settings. */
  settings: PodsockSettings;
  /** Comment lines (without '# ') for the top of the file. */
  header: readonly string[];
}

const WHERE = "arguments after '--'";

/** The [Podsock] section: every key that applies in the mode and that the table writes, each with its comment. */
function podsockSection(s: PodsockSettings): string[] {
  const out = ['[Podsock]'];
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    const line = d.modes.includes(s.mode) ? d.file(s) : null;
    if (line !== null) out.push(`# ${line.comment}`, `${d.key}=${line.value}`);
  }
  return out;
}

/**
 * Builds NAME.container (see the module comment). Throws PodsockError: 'PODSOCK_ERR_CONFIG' for
 * arguments parsePodmanRunArgs() refuses, 'PODSOCK_ERR_USAGE' when there is no image or the image
 * cannot be written as Image=.
 */
export function containerFileText(input: ContainerFileInput): string {
  const args = parsePodmanRunArgs(input.podmanArgs, WHERE);
  if (args.image === null) {
    throw new PodsockError('PODSOCK_ERR_USAGE', `podsock generate: no image: give the container after '--', e.g. '-- docker.io/library/nginx:latest'`);
  }
  if (!isLiteralValue(args.image) || /\.(image|build)$/.test(args.image)) {
    throw new PodsockError('PODSOCK_ERR_USAGE', `podsock generate: cannot write image ${q(args.image)} as Image= in a .container file`);
  }
  const { lines, podmanArgs } = optionsToKeys(args.flags);
  const out = [...input.header.map((l) => (l === '' ? '#' : `# ${l.replace(/[\r\n]/g, ' ')}`)), '', '[Container]', `Image=${args.image}`];
  if (args.command.length > 0) out.push(`Exec=${args.command.map(quoteWord).join(' ')}`);
  if (args.name !== null) out.push(`ContainerName=${args.name}`);
  for (const l of lines) out.push(`${l.key}=${l.value}`);
  if (podmanArgs.length > 0) {
    out.push('# Options without a [Container] key, passed to podman run as they are.');
    for (const a of podmanArgs) out.push(`PodmanArgs=${quoteWord(a)}`);
  }
  out.push('', ...podsockSection(input.settings), '');
  return out.map(escapeValue).join('\n');
}

/** `Key=value` with the value's '%' doubled; comments, headers and empty lines as they are. */
function escapeValue(line: string): string {
  if (line === '' || line.startsWith('#') || line.startsWith('[')) return line;
  const eq = line.indexOf('=');
  return `${line.slice(0, eq + 1)}${escapeSpecifiers(line.slice(eq + 1))}`;
}
