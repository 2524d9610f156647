/**
 * The help text of every subcommand. The man page podsock(1) is generated from the same text
 * (scripts/build-man.ts), so the two never disagree. The options of the [Podsock] keys come from the
 * key table (config/podsock-keys.ts).
 */
import { podsockOptionsHelp } from './podsock-flags.js';

const KEY_OPTIONS = podsockOptionsHelp();

export const USAGE: Record<string, string> = {
  main: `Usage: podsock COMMAND [OPTIONS]

Run Podman containers as socket-activated systemd services: systemd holds the socket, the first
connection starts the container, podsock hands it the sockets (or proxies to it), relays its
readiness to systemd, and stops it when the service has been idle.

Commands:
  run NAME       Start the container NAME and serve until stopped or idle
  check NAME     Validate NAME's configuration and print the podman command run would execute
  generate NAME  Write .socket, .service and .container units for NAME
  status [NAME]  Show what the services podsock runs are doing
  auto-update    Update idle services that set AutoUpdate=, rolling back what is not ready
  demo           Show lazy start and idle stop on a built-in example

Options:
  -h, --help     Show help (also: podsock COMMAND --help)
  --version      Show the version
`,
  run: `Usage: podsock run NAME [OPTIONS] [-- PODMAN_RUN_ARGS...]

Start the container NAME (defined by NAME.container, or by PODMAN_RUN_ARGS), hand it the sockets
systemd passed (handover mode) or proxy connections to it (proxy mode), tell systemd when it is
ready, and stop it after IdleTimeout without connections.

NAME.container is looked up in $PODSOCK_CONFIG_DIR, then /etc/podsock/ (root) or
\${XDG_CONFIG_HOME:-~/.config}/podsock/ (other users).

Options (each also a [Podsock] key; the option wins):
  --config FILE            Use FILE instead of looking up NAME.container
${KEY_OPTIONS}
  --listen ADDR            Standalone: bind ADDR yourself (repeatable): /path, @name,
                           127.0.0.1:8080, [::1]:8080 or 8080, udp:ADDR for UDP;
                           NAME=ADDR names it
  --log-level LEVEL        fatal, error, warn, info (default), debug, trace
  -h, --help               Show this help
`,
  check: `Usage: podsock check [NAME] [OPTIONS] [-- PODMAN_RUN_ARGS...]

Load and validate NAME's configuration exactly as 'podsock run' would, print the podman command
run would execute, and warn about settings that load but do not do what people expect:
PublishPort in handover mode, an image missing from local storage (fatal with Pull=never), a
unit whose Type= is not notify or KillMode= not mixed, a unit whose TimeoutStartSec= is shorter
than StartTimeout or whose ExecStart= runs podsock without podsock-launch, Ready=healthy without
HealthCmd= when the image defines no HEALTHCHECK (an image built in OCI format, podman build's
default, has none), and an IdleTimeout under 10s, shorter than StartTimeout, or shorter than the
service's usual start time recorded in the state directory (see 'podsock status'). In proxy mode it also says who can reach the app past the socket unit's
access control: rootless, the port published on 127.0.0.1 (and Network=none cannot work); rootful,
the container's address on a bridge network when the socket unit (NAME.socket beside the service
unit) sets SocketMode=, IPAddressAllow= or IPAddressDeny=.

With '--config FILE' and no NAME, NAME is FILE's name without '.container'.

The command goes to stdout; warnings, one per line, and a summary go to stderr. The cidfile,
notify directory and proxy host port in it are placeholders for what run creates at start.

Options (and every option of 'podsock run'):
  --unit FILE              Check FILE as the service unit instead of looking for NAME.service,
                           podsock@NAME.service or podsock@.service in the unit directories
  --strict                 Exit with status 1 when there are warnings
  -h, --help               Show this help

Exit status: 0 valid, 1 warnings with --strict, 64 bad command line, 78 invalid configuration.
`,
  generate: `Usage: podsock generate NAME --listen ADDR... [OPTIONS] [-- PODMAN_RUN_ARGS...]

Write NAME.socket, NAME.service and NAME.container for a socket-activated container: systemd
listens on each ADDR, the first connection starts podsock, podsock runs the container given by
PODMAN_RUN_ARGS ([OPTIONS] IMAGE [COMMAND...], as for podman run). Options with a [Container]
key become that key, the others PodmanArgs=. Then print where to install the files and which
systemctl commands to run. NAME.service runs podsock through podsock-launch when it is built,
which starts podman from the last activation's plan while node boots.

Options:
  --listen ADDR            Address for ListenStream= (repeatable): /path, @name, 127.0.0.1:8080,
                           [::1]:8080 or 8080; udp:ADDR for ListenDatagram=;
                           NAME=ADDR sets FileDescriptorName=NAME
${KEY_OPTIONS}
  --user                   Units for the user manager (default unless root):
                           ~/.config/systemd/user and ~/.config/podsock
  --system                 Units for the system manager (default for root):
                           /etc/systemd/system and /etc/podsock
  --config-dir DIR         NAME.container will be installed in DIR (absolute)
  --template               Use podsock@.service instead of writing NAME.service
  --env NAME=VALUE         Add Environment=NAME=VALUE to NAME.service (repeatable)
  --output DIR             Write the files to DIR instead of printing them
  --force                  Overwrite existing files in DIR
  -h, --help               Show this help
`,
  status: `Usage: podsock status [NAME] [--json]

Show what podsock's services on this host are doing: for each, its scope (system or user), mode,
sockets, whether its container runs and since when, the last cold start (the time to ready from
podsock's start, standalone from the activation's), the connections and UDP flows now, when the idle timeout stops it, the
consecutive failures and the last error, and the image. It reads the status files 'podsock run'
writes in its state directory (/run/podsock/state for root, $XDG_RUNTIME_DIR/podsock/state for
other users) and never needs root for a user's own services: root sees the system services, other
users their own and the system ones when they can read them (the command says when it cannot).
A service whose podsock is gone is shown as stopped, whatever its file says.

With --json the output is one object, stable for scripts (fields are only ever added):
{"version": 1, "services": [...], "unreadable": [{"path", "error"}]}, each service with name,
scope, file, mode, sockets, state (starting, ready, stopping, stopped, failed or waiting),
running, pid, since, lastColdStartMs, usualColdStartMs, active, idleTimeoutMs, idleDeadline,
consecutiveFailures, lastError, lastErrorAt, image and updatedAt; times are ISO 8601 strings,
durations milliseconds, and what is unknown is null.

Options:
  --json                   Print JSON instead of the table
  -h, --help               Show this help

Exit status: 0 shown, 64 bad command line, 65 NAME's status file is not podsock's, 66 no
status recorded for NAME.
`,
  'auto-update': `Usage: podsock auto-update [NAME...] [OPTIONS]

Update the idle services that set AutoUpdate= in their .container file, with the rule of
podman-auto-update(1): a new image that does not become ready within StartTimeout is rolled back
to the previous one, and the failure is reported. 'podman auto-update' only sees running
containers, so it updates active services (by restarting their unit) and never idle ones.

Without NAME, every NAME.container in podsock's configuration directories that sets AutoUpdate=.
A service whose container exists is active: it is skipped, and 'podman auto-update' is the way.
One run at a time updates a service (and an image name): a service another podsock auto-update is
updating is skipped with that run's pid, and the next run looks at it again.

AutoUpdate=registry: pull the image; when it changed, start it once with the service's
configuration (its podman options and Ready=, on loopback sockets of its own, as container
CONTAINER-update), and when it becomes ready within StartTimeout the image name moves to it;
otherwise the new image is removed and the name stays on the previous one. While it is tried, the
name still names the previous image, so an activation meanwhile starts the previous one.
AutoUpdate=local: the name already points at a new local build; the previous image is the one
podsock auto-update last found or verified (the first run only records it). A new image that is
not ready is left in storage and the name goes back to the previous one.

Every outcome is recorded in the state directory as NAME.auto-update.json.

Options:
  --dry-run                Report what would be updated ('pending'); change nothing (registry:
                           the image pulled to compare is removed again)
  --json                   Print the results as JSON: service, image, policy, status, message, imageId
  --log-level LEVEL        Messages of the trial starts: fatal, error, warn (default), info, debug
  -h, --help               Show this help

Status per service: updated, not-updated, pending, rolled-back, failed, skipped.
Exit status: 0 when nothing was rolled back or failed, 1 otherwise, 64 bad command line.
`,
  demo: `Usage: podsock demo [OPTIONS]

Show podsock at work on a built-in example, without a registry: build (or reuse) the tiny local
image localhost/podsock-demo:latest (the host's static busybox serving one page with httpd), run
'podsock run' standalone in proxy mode on 127.0.0.1, and narrate what happens while the demo makes
its own requests: the container starts on the first connection, the time to the first byte, the
stop after the idle timeout, and the cold start on the next connection. Then stop podsock with
SIGTERM and check that no container is left. Needs podman and a static busybox (busybox-static);
rootless podman also needs slirp4netns or pasta. From a checkout, 'npm run demo' installs what is
missing (as root) and runs this.

Options:
  --port N                 Listen on 127.0.0.1:N; default 8089, or a free port if that is taken
  --idle-timeout SPAN      Stop the container after this long without connections; default 3s
  --interactive            Keep podsock running after the demo until Ctrl-C, to try it with curl
  --name NAME              Service name (the container is podsock-NAME); default demo
  -h, --help               Show this help

Exit status: 0 when everything happened as shown, 1 when it did not, 69 when something it needs is
missing, 130 when interrupted.
`,
};
