/**
 * The container's sd_notify messages on their way to systemd: what relay-filter.ts allows for the phase
 * is sent on from podsock's own pid (the unit's main pid stays podsock), STATUS= inside podsock's status
 * line, WATCHDOG=1 through the activation's watchdog; READY=1 while starting is the container's
 * readiness (Ready=notify). Dropped assignments are logged at debug level.
 */
import type { Logger } from '../log.js';
import type { NotifyMessage } from '../sd/notify-server.js';
import { filterContainerMessage, type RelayPhase } from '../sd/relay-filter.js';
import type { StatusLine } from './status-line.js';
import type { Watchdog } from './watchdog.js';

export interface ContainerMessagesOptions {
  log: Logger;
  /** Sends to systemd; never throws. */
  notify: (fields: Array<[string, string]>) => void;
  status: StatusLine;
  watchdog: Watchdog;
  /** The container said READY=1 while starting. */
  onReady: () => void;
}

/** One activation's relay; `phase` follows the activation (starting → ready → stopping). */
export class ContainerMessages {
  phase: RelayPhase = 'starting';
  private readonly o: ContainerMessagesOptions;

  constructor(o: ContainerMessagesOptions) {
    this.o = o;
  }

  /** For NotifyServer's onMessage. */
  readonly onMessage = (msg: NotifyMessage): void => {
    const d = filterContainerMessage(msg.fields, this.phase);
    for (const x of d.dropped) this.o.log.debug({ key: x.key, pid: msg.pid }, `Dropped ${x.key}= from the container: ${x.reason}`);
    const forward: Array<[string, string]> = d.forward.map(([k, v]) => (k === 'STATUS' ? ['STATUS', this.o.status.fromContainer(v)] : [k, v]));
    if (d.ready) this.o.onReady();
    if (d.watchdog) this.o.watchdog.containerPinged();
    if (forward.length > 0) this.o.notify(forward);
  };
}
