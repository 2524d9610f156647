/**
 * The one error catalogue. Every failure podsock reports carries a stable `code` from this table;
 * callers branch on codes, never on message text. The table also fixes the process exit status for
 * each code, documented in the README ("Exit codes").
 *
 * Exit statuses follow systemd's conventions where one fits (sysexits-style 64+ for usage/config errors,
 * 1 for a generic runtime failure), so `Restart=on-failure` restarts on the runtime failures and a
 * configuration error is visible as such in `systemctl status`.
 */

export const ERROR_CODES = {
  /** Command line could not be understood. */
  PODSOCK_ERR_USAGE: { exit: 64, summary: 'bad command line' },
  /** A configuration file or value is invalid (names file, line and key). */
  PODSOCK_ERR_CONFIG: { exit: 78, summary: 'invalid configuration' },
  /** The configuration file for NAME was not found in any search directory. */
  PODSOCK_ERR_CONFIG_NOT_FOUND: { exit: 78, summary: 'configuration not found' },
  /** A systemd time span could not be parsed. */
  PODSOCK_ERR_TIMESPAN: { exit: 78, summary: 'invalid time span' },
  /** The socket-activation environment (LISTEN_*) is malformed. */
  PODSOCK_ERR_LISTEN_ENV: { exit: 66, summary: 'malformed socket-activation environment' },
  /** podsock was started without sockets and without --listen. */
  PODSOCK_ERR_NO_SOCKETS: { exit: 66, summary: 'no sockets to serve' },
  /** An inherited fd is not something podsock can serve in the chosen mode. */
  PODSOCK_ERR_BAD_SOCKET: { exit: 66, summary: 'unsupported socket' },
  /** NOTIFY_SOCKET is malformed or a notify message could not be sent. */
  PODSOCK_ERR_NOTIFY: { exit: 1, summary: 'sd_notify failed' },
  /** A notify message is larger than systemd accepts (4096 bytes). */
  PODSOCK_ERR_NOTIFY_TOO_LARGE: { exit: 1, summary: 'notify message too large' },
  /** The native addon could not be loaded or a socket call failed. */
  PODSOCK_ERR_NATIVE: { exit: 1, summary: 'native socket operation failed' },
  /** podman is not installed or not on PATH. */
  PODSOCK_ERR_PODMAN_MISSING: { exit: 69, summary: 'podman not found' },
  /** podman itself failed (exit 125 and friends) before the container ran. */
  PODSOCK_ERR_PODMAN: { exit: 69, summary: 'podman failed' },
  /** The container exited before it became ready. */
  PODSOCK_ERR_CONTAINER_EXITED: { exit: 1, summary: 'container exited before ready' },
  /** The container exited (after ready) with a non-zero status. */
  PODSOCK_ERR_CONTAINER_FAILED: { exit: 1, summary: 'container failed' },
  /** The container did not become ready within StartTimeout. */
  PODSOCK_ERR_READY_TIMEOUT: { exit: 1, summary: 'container not ready in time' },
  /** The backend could not be reached although the container is up. */
  PODSOCK_ERR_BACKEND: { exit: 1, summary: 'backend unreachable' },
  /** A listen address given with --listen could not be parsed or bound. */
  PODSOCK_ERR_LISTEN: { exit: 66, summary: 'cannot listen' },
  /** A private directory (runtime, state) is another user's, a symbolic link or writable by others. */
  PODSOCK_ERR_PRIVATE_DIR: { exit: 73, summary: 'unsafe private directory' },
  /** `podsock demo`: something the demo needs (static busybox, rootless networking) is missing. */
  PODSOCK_ERR_DEMO_SETUP: { exit: 69, summary: 'demo prerequisites missing' },
  /** `podsock demo`: the demo did not see what it expected (a reply, a start, an idle stop). */
  PODSOCK_ERR_DEMO: { exit: 1, summary: 'demo failed' },
  /** A status file in podsock's state directory is not one podsock wrote (corrupt, too large, another user's). */
  PODSOCK_ERR_STATE_FILE: { exit: 65, summary: 'unreadable status file' },
  /** `podsock status NAME`: no status recorded for NAME in any state directory looked at. */
  PODSOCK_ERR_UNKNOWN_SERVICE: { exit: 66, summary: 'unknown service' },
  /** `podsock auto-update`: a new image was rolled back (it did not become ready) or a service could not be updated. */
  PODSOCK_ERR_AUTO_UPDATE: { exit: 1, summary: 'auto-update rolled back or failed' },
  /** Anything else: a bug. */
  PODSOCK_ERR_INTERNAL: { exit: 70, summary: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface PodsockErrorOptions {
  cause?: unknown;
  /** Extra structured facts for the log (file, line, key, container...). */
  details?: Record<string, unknown>;
  /** Overrides the catalogue's exit status (e.g. to pass on a container's own exit code). */
  exitCode?: number;
}

/** A failure with a stable code. `message` is for people; `code` is for programs. */
export class PodsockError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: PodsockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PodsockError';
    this.code = code;
    this.details = options.details ?? {};
    this.exitCode = options.exitCode ?? ERROR_CODES[code].exit;
  }
}

/** True when `err` is a PodsockError, optionally of the given code. */
export function isPodsockError(err: unknown, code?: ErrorCode): err is PodsockError {
  return err instanceof PodsockError && (code === undefined || err.code === code);
}

/** The exit status for any thrown value: the catalogue's for PodsockError, 70 (internal) otherwise. */
export function exitStatusFor(err: unknown): number {
  return err instanceof PodsockError ? err.exitCode : ERROR_CODES.PODSOCK_ERR_INTERNAL.exit;
}

/** Longest quoted value in a message; a peer or a file must not be able to make a message huge. */
export const QUOTE_MAX = 400;

/**
 * Quote a user-controlled value the way systemd's messages do: in single quotes. Control characters
 * are shown as escapes (a value must not forge log lines or terminal output) and a long value is cut
 * to QUOTE_MAX characters with '…'.
 */
export function q(value: unknown): string {
  let text = String(value);
  if (text.length > QUOTE_MAX) text = `${text.slice(0, QUOTE_MAX - 1)}…`;
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  return `'${text}'`;
}
