/**
 * The files podman writes while it starts a container, in podsock's private runtime directory: the
 * cidfile always; conmon's pid file when podman runs detached (-d: no podman process stays, conmon is
 * watched instead); the container's pid file when podsock connects from inside the container's network
 * namespace. They go before a start and after it: podman refuses to start when the cidfile exists
 * (`--cidfile` in podman-run(1)).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export interface RunFiles {
  cidfile: string;
  /** podman run --conmon-pidfile, when podman runs detached. */
  conmonPidfile: string | null;
  /** podman run --pidfile (the container's init), when the backend is reached in its namespace. */
  pidfile: string | null;
}

/** Where the files of service `name` go; `direct` needs `detached` (the container's pid is found through conmon). */
export function runFilesFor(runtimeDir: string, name: string, how: { detached: boolean; direct: boolean }): RunFiles {
  return {
    cidfile: join(runtimeDir, `${name}.cid`),
    conmonPidfile: how.detached ? join(runtimeDir, `${name}.conmon.pid`) : null,
    pidfile: how.direct ? join(runtimeDir, `${name}.pid`) : null,
  };
}

/** The paths that exist in this set, for the plan's unlink list. */
export function runFilePaths(f: RunFiles): string[] {
  return [f.cidfile, f.pidfile, f.conmonPidfile].filter((p): p is string => p !== null);
}

/** Remove them; a missing file is fine. */
export function removeRunFiles(f: RunFiles): void {
  rmSync(f.cidfile, { force: true });
  if (f.pidfile !== null) rmSync(f.pidfile, { force: true });
  if (f.conmonPidfile !== null) rmSync(f.conmonPidfile, { force: true });
}
