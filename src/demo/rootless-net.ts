/**
 * Rootless podman publishes a container port on the host (`--publish 127.0.0.1::8080`, what proxy
 * mode needs) through a user-mode network helper: slirp4netns (podman 4.x's default) or pasta. It
 * looks for them in its helper directories and on PATH (containers.conf(5), helper_binaries_dir).
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** containers.conf(5)'s default helper_binaries_dir, searched before PATH. */
export const HELPER_DIRS: readonly string[] = ['/usr/local/libexec/podman', '/usr/local/lib/podman', '/usr/libexec/podman', '/usr/lib/podman'];

/**
 * The first slirp4netns (preferred, as podman 4.x does) or pasta podman would find in `helperDirs`
 * or on PATH, or null when there is neither.
 */
export function findRootlessNetworkHelper(env: NodeJS.ProcessEnv, helperDirs: readonly string[] = HELPER_DIRS): string | null {
  const dirs = [...helperDirs, ...(env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d !== '')];
  for (const name of ['slirp4netns', 'pasta']) {
    for (const d of dirs) {
      try {
        accessSync(join(d, name), fsConstants.X_OK);
        return join(d, name);
      } catch {
        // next
      }
    }
  }
  return null;
}
