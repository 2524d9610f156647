/**
 * Which of the container's sd_notify assignments podsock passes on to systemd, and what each means for
 * the supervisor. Pure: a decision per message, no I/O.
 *
 * podsock owns the container's notify socket (podman runs with --sdnotify=conmon, and the container's
 * NOTIFY_SOCKET is podsock's, runtime/podman-argv.ts), so every datagram the container sends reaches
 * it unfiltered, hostile ones included. Only these are relayed:
 * STATUS=, ERRNO=, RELOADING=1/READY=1 (reload cycles once ready), STOPPING=1, EXTEND_TIMEOUT_USEC=
 * (only while starting), WATCHDOG=1. Never MAINPID= (it would make the container the unit's main pid,
 * sd_notify(3)), FDSTORE, FDNAME, FDSTOREREMOVE (the container must not fill systemd's fd store),
 * NOTIFYACCESS= (v254+, would widen who may talk to systemd), BARRIER=1 (answered locally by closing
 * its fd).
 */

export type RelayPhase = 'starting' | 'ready' | 'stopping';

export interface RelayDecision {
  /** Assignments to send to systemd as they are, in order. */
  forward: Array<[string, string]>;
  /** Assignments dropped, with the reason (logged at debug by the caller). */
  dropped: Array<{ key: string; value: string; reason: string }>;
  /** The container said READY=1 while podsock was starting it. */
  ready: boolean;
  /** The container pinged the watchdog (WATCHDOG=1). */
  watchdog: boolean;
}

// STATUS is free text for people; systemd caps it at 16 KiB (STATUS_TEXT_MAX) and a datagram at 4 KiB.
const DIGITS = /^[0-9]{1,20}$/;

/** Decide what to do with one parsed message from the container in the given phase. */
export function filterContainerMessage(fields: ReadonlyArray<readonly [string, string]>, phase: RelayPhase): RelayDecision {
  const d: RelayDecision = { forward: [], dropped: [], ready: false, watchdog: false };
  const drop = (key: string, value: string, reason: string): void => {
    d.dropped.push({ key, value, reason });
  };
  for (const [key, value] of fields) {
    switch (key) {
      case 'STATUS':
        d.forward.push([key, value]);
        break;
      case 'ERRNO':
        if (DIGITS.test(value)) d.forward.push([key, value]);
        else drop(key, value, 'expected a decimal errno number');
        break;
      case 'READY':
        if (value !== '1') drop(key, value, "only 'READY=1' is defined");
        else if (phase === 'starting') d.ready = true; // podsock sends its own READY=1 with its status line
        else if (phase === 'ready') d.forward.push([key, value]); // completes a RELOADING=1 cycle
        else drop(key, value, 'the service is stopping');
        break;
      case 'RELOADING':
        if (value !== '1') drop(key, value, "only 'RELOADING=1' is defined");
        else if (phase === 'ready') d.forward.push([key, value]);
        else drop(key, value, `a reload cannot start while ${phase}`);
        break;
      case 'STOPPING':
        if (value === '1') d.forward.push([key, value]);
        else drop(key, value, "only 'STOPPING=1' is defined");
        break;
      case 'EXTEND_TIMEOUT_USEC':
        if (phase !== 'starting') drop(key, value, 'only relayed while the container starts');
        else if (DIGITS.test(value)) d.forward.push([key, value]);
        else drop(key, value, 'expected microseconds as a decimal number');
        break;
      case 'WATCHDOG':
        if (value === '1') d.watchdog = true;
        else drop(key, value, "only 'WATCHDOG=1' is relayed");
        break;
      case 'MAINPID':
      case 'MAINPIDFDID':
      case 'MAINPIDFD':
        drop(key, value, 'the unit main pid stays podsock');
        break;
      case 'FDSTORE':
      case 'FDSTOREREMOVE':
      case 'FDNAME':
      case 'FDPOLL':
        drop(key, value, "the container may not use systemd's fd store");
        break;
      case 'NOTIFYACCESS':
        drop(key, value, 'the container may not change NotifyAccess=');
        break;
      case 'BARRIER':
        drop(key, value, 'answered by podsock (its fd was closed)');
        break;
      default:
        drop(key, value, 'not a relayed key');
    }
  }
  return d;
}
