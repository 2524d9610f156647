/**
 * The help text of every subcommand. The man page podsock(1) is generated from the same text
 * (scripts/build-man.ts), so the two never disagree.
 */
export const USAGE: Record<string, string> = {
  main: `Usage: podsock COMMAND [OPTIONS]

Run Podman containers as socket-activated systemd services: systemd holds the socket, the first
connection starts the container, podsock hands it the sockets (or proxies to it), relays its
readiness to systemd, and stops it when the service has been idle.

Commands:
  run NAME       Start the container NAME and serve until stopped or idle
  check NAME     Validate NAME's configuration and print the podman command run would execute
  generate NAME  Write .socket, .service and .container units for NAME

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
  --mode MODE              handover (default) or proxy                          (Mode=)
  --ready HOW              started, notify, tcp, http, http:/PATH, healthy      (Ready=)
  --idle-timeout SPAN      Stop after this long without connections; default 5min,
                           'infinity' never                                      (IdleTimeout=)
  --start-timeout SPAN     Fail if not ready within this; default 90s           (StartTimeout=)
  --stop-timeout SPAN      Time the container gets to stop; default 10s         (StopTimeout=)
  --backend PORTS          Proxy mode: container port, or NAME=PORT per socket  (Backend=)
  --max-connections N      Proxy mode: stop accepting at N; default 4096        (MaxConnections=)
  --listen ADDR            Standalone: bind ADDR yourself (repeatable): /path, @name,
                           127.0.0.1:8080, [::1]:8080 or 8080; NAME=ADDR names it
  --log-level LEVEL        fatal, error, warn, info (default), debug, trace
  -h, --help               Show this help
`,
};
