/**
 * The status recorder of the service `podsock run` serves: its file in the state directory
 * (paths.ts), what the configuration and the sockets say about it, and podsock's own pid.
 */
import type { ServiceConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import { stateDirFor } from '../paths.js';
import { describeFd, type ListenFd } from '../sd/listen-fds.js';
import { processStartTime } from './liveness.js';
import { statusFileFor } from './status-file.js';
import { StatusRecorder } from './status-recorder.js';

/** A recorder for `cfg`'s service, run by this process; a write failure is logged once as a warning. */
export function serviceRecorder(cfg: ServiceConfig, listeners: readonly ListenFd[], env: NodeJS.ProcessEnv, uid: number, log: Logger): StatusRecorder {
  return new StatusRecorder({
    file: statusFileFor(stateDirFor(env, uid), cfg.name),
    name: cfg.name,
    mode: cfg.mode,
    sockets: listeners.map(describeFd),
    image: cfg.image,
    idleTimeoutMs: cfg.idleTimeoutMs,
    pid: process.pid,
    pidStart: processStartTime('self'),
    onError: (err) => log.warn({ err }, `Cannot write the status file for 'podsock status': ${(err as Error).message}, ignoring`),
  });
}
