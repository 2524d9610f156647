/**
 * After a successful start, leave the plan from which podsock-launch starts podman at the next
 * activation before podsock has loaded (runtime/prestart.ts, native/plan.h): the same command, the
 * directories and notify sockets it needs, and the files whose change makes it stale. A plan that cannot
 * be written costs only that head start, so it is logged and ignored.
 */
import type { Logger } from '../log.js';
import { planBytes, writePlan } from '../runtime/prestart.js';

export interface StartPlan {
  /** Where the plan goes. */
  path: string;
  /** Files whose change makes the plan stale; asked for now, not at start-up. */
  checkFiles: () => string[];
}

export interface StartedCommand {
  runtimeDir: string;
  /** The run files to remove before podman starts (cidfile, pid files). */
  unlinks: string[];
  /** The container's notify directory (traversable) and podman's own (private). */
  notifyDirs: { container: string; podman: string };
  /** Listening fds handed over at 3.. (handover), 0 otherwise. */
  fds: number;
  exe: string;
  /** argv, argv[0] included. */
  argv: string[];
  env: Record<string, string>;
}

/** Write the plan for what just started; a failure is logged as a warning and ignored. */
export function leavePlan(plan: StartPlan, started: StartedCommand, log: Logger): void {
  try {
    writePlan(
      plan.path,
      planBytes({
        checkFiles: plan.checkFiles(),
        mkdirs: [started.runtimeDir],
        unlinks: started.unlinks,
        notify: [
          { dir: started.notifyDirs.container, mode: 0o711 },
          { dir: started.notifyDirs.podman, mode: 0o700 },
        ],
        fds: started.fds,
        exe: started.exe,
        argv: started.argv,
        env: started.env,
      }),
    );
  } catch (err) {
    log.warn({ err }, 'Cannot write the plan for podsock-launch, ignoring');
  }
}
