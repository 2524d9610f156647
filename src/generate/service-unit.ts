/**
 * The NAME.service unit for `podsock generate`: podsock as a Type=notify service started by its
 * socket units, shaped after units/podsock@.service, every line with the reason
 * it is there. No Documentation=man:podsock(1): `systemd-analyze verify` fails a unit whose man page
 * is not installed, and npm does not install man pages for a local install. Pure: the caller resolves the paths (podsock, podman) and passes them in.
 */
import { formatTimespan } from '../config/timespan.js';
import { escapeSpecifiers, execLine, quoteWord } from './unit-quote.js';
import type { UnitText } from './socket-units.js';

/** Room for podsock's and podman's own work around StartTimeout= and StopTimeout=. */
export const TIMEOUT_MARGIN_MS = 30_000;

export interface ServiceUnitInput {
  name: string;
  /** The command that runs podsock: [podsock] or [node, main.js]; absolute paths. */
  podsock: readonly string[];
  /** Absolute path of podman, for ExecStopPost=. */
  podman: string;
  /** The container's name, for the cleanup in ExecStopPost=. */
  containerName: string;
  /**
   * The `--config` argument as unit-file text (specifiers allowed, e.g. '%h/.config/podsock/web.container'),
   * or null to let podsock search its configuration directories.
   */
  configInUnit: string | null;
  /** The socket unit files that start this service ('web.socket', ...). */
  sockets: readonly string[];
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Extra NAME=VALUE pairs for the service's environment (written literally). */
  env: ReadonlyArray<readonly [string, string]>;
  /** Comment lines (without '# ') for the top of the file. */
  header: readonly string[];
}

/** Builds NAME.service (see the module comment). */
export function serviceUnit(input: ServiceUnitInput): UnitText {
  const n = input.name;
  const run = execLine([...input.podsock, 'run', n]) + (input.configInUnit === null ? '' : ` --config ${input.configInUnit}`);
  const lines = [
    ...input.header.map((l) => `# ${l}`),
    '[Unit]',
    `Description=podsock: socket-activated container ${n}`,
    `# Started by ${input.sockets.join(', ')}; stopping the socket${input.sockets.length > 1 ? 's' : ''} stops this service too.`,
    ...input.sockets.map((s) => `Requires=${s}`),
    ...input.sockets.map((s) => `After=${s}`),
    '',
    '[Service]',
    '# podsock sends READY=1 itself, from its own pid, once the container is ready.',
    'Type=notify',
    'NotifyAccess=main',
  ];
  if (input.sockets.length > 1) {
    lines.push('# Pass the sockets of every socket unit, not only of the one with the same name.', `Sockets=${input.sockets.join(' ')}`);
  }
  lines.push(
    '# podsock starts the container on the first connection and exits when it has been idle.',
    `ExecStart=${run}`,
    '# Only podsock gets the first SIGTERM; it stops the container with `podman stop`, then exits.',
    'KillMode=mixed',
    '# An idle exit is status 0; a failure of podsock or of the container restarts the service.',
    'Restart=on-failure',
    'RestartSec=2s',
    '# podsock extends the start timeout itself (EXTEND_TIMEOUT_USEC) while within its StartTimeout=.',
    `TimeoutStartSec=${formatTimespan(input.startTimeoutMs + TIMEOUT_MARGIN_MS)}`,
    "# The container's StopTimeout= plus time for podman itself.",
    `TimeoutStopSec=${formatTimespan(input.stopTimeoutMs + TIMEOUT_MARGIN_MS)}`,
    "# podsock's private runtime directory: the container-id file and the container's notify socket.",
    `RuntimeDirectory=podsock-${n}`,
    'RuntimeDirectoryMode=0700',
    '# Lets `podman auto-update` find the unit of the container.',
    'Environment=PODMAN_SYSTEMD_UNIT=%n',
  );
  for (const [k, v] of input.env) lines.push(`Environment=${quoteWord(escapeSpecifiers(`${k}=${v}`))}`);
  lines.push(
    '# If podsock itself was killed, remove its container afterwards. Stop first: podman 4.3 `rm --force`',
    '# drops a container left "stopping" by an interrupted `podman stop` without killing its processes.',
    `ExecStopPost=-${execLine([input.podman, 'stop', '--ignore', input.containerName])}`,
    `ExecStopPost=-${execLine([input.podman, 'rm', '--force', '--ignore', input.containerName])}`,
    '',
  );
  return { file: `${n}.service`, text: lines.join('\n') };
}
