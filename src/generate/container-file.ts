/**
 * The text of NAME.container for `podsock generate`: a Quadlet-style [Container] section made from
 * the `podman run` arguments after `--`, and a [Podsock] section with every podsock setting written
 * out, each with a comment. loadConfig() on the result gives the same image, command, container
 * name and podman options (per option kind, in order; see container-keys.ts) as `podsock run NAME --
 * ARGS` would. Pure.
 */
import { parsePodmanRunArgs } from '../config/podman-args.js';
import type { PodsockSettings, ReadySpec } from '../config/podsock-section.js';
import { DEFAULT_MAX_CONNECTIONS } from '../config/podsock-section.js';
import { formatTimespan } from '../config/timespan.js';
import { PodsockError, q } from '../errors.js';
import { optionsToKeys } from './container-keys.js';
import { isLiteralValue, quoteWord } from './unit-quote.js';

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

/** Ready= text for a readiness spec. */
export function readyText(r: ReadySpec): string {
  return r.kind === 'http' ? (r.path === '/' ? 'http' : `http:${r.path}`) : r.kind;
}

function podsockSection(s: PodsockSettings): string[] {
  const out = [
    '[Podsock]',
    s.mode === 'handover'
      ? '# handover: the container gets the listening sockets itself (LISTEN_FDS); it needs no network.'
      : '# proxy: podsock accepts the connections and forwards them to Backend= in the container.',
    `Mode=${s.mode}`,
    s.ready.kind === 'notify'
      ? '# Ready once the container sends READY=1 to $NOTIFY_SOCKET; until then systemd holds the clients.'
      : s.ready.kind === 'started'
        ? '# Ready as soon as the container runs (use notify for an app that sends READY=1).'
        : '# How podsock decides that the container is ready to take the held connections.',
    `Ready=${readyText(s.ready)}`,
    "# Stop the container (and podsock) after this long without connections; 'infinity' never does.",
    `IdleTimeout=${formatTimespan(s.idleTimeoutMs)}`,
    '# The container must be ready within this, or the start fails.',
    `StartTimeout=${formatTimespan(s.startTimeoutMs)}`,
    '# `podman stop` gives the container this long before it is killed.',
    `StopTimeout=${formatTimespan(s.stopTimeoutMs)}`,
  ];
  if (s.mode === 'proxy') {
    out.push(
      "# The container port to forward to (NAME=PORT per socket, NAME being the socket's FileDescriptorName=).",
      `Backend=${s.backends.map((b) => (b.name === null ? String(b.port) : `${b.name}=${b.port}`)).join(' ')}`,
    );
    if (s.maxConnections !== DEFAULT_MAX_CONNECTIONS) {
      out.push('# Stop accepting while this many connections are open.', `MaxConnections=${s.maxConnections}`);
    }
    if (s.connectionIdleTimeoutMs !== null) {
      out.push('# Close a connection that moved no byte in either direction for this long.', `ConnectionIdleTimeout=${formatTimespan(s.connectionIdleTimeoutMs)}`);
    }
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
  return out.join('\n');
}
