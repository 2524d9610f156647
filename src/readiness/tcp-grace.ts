/**
 * How long a TCP readiness probe's connection must survive before it counts (see tcp.ts for why). Kept
 * apart from the probe itself, which loads node:net, so that the supervisor can decide it at start-up
 * without loading the probe.
 */

/** The grace window where a user-space forwarder may accept a connection before the app listens. */
export const DEFAULT_GRACE_MS = 150;

/**
 * The grace window a published port needs: DEFAULT_GRACE_MS where a user-space forwarder may accept for
 * the app (rootless podman, or a slirp4netns or pasta network asked for in the podman options), 0 where
 * the mapping is a DNAT rule and a connect is refused until the app listens (rootful podman's bridge).
 * The first request waits for this verdict, so it is only paid where it is needed.
 */
export function tcpGraceFor(o: { rootless: boolean; podmanOptions: readonly string[] }): number {
  if (o.rootless) return DEFAULT_GRACE_MS;
  return o.podmanOptions.some((a) => /slirp4netns|pasta/.test(a)) ? DEFAULT_GRACE_MS : 0;
}
