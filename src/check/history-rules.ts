/**
 * `podsock check` rules from what podsock recorded about earlier activations of the service (the
 * status file, status/status-record.ts). Pure: the CLI reads the record and passes it.
 */
import type { ServiceConfig } from '../config/load.js';
import { formatTimespan } from '../config/timespan.js';
import { q } from '../errors.js';
import { usualColdStartMs, type StatusRecord } from '../status/status-record.js';
import { locationOf, type CheckWarning } from './warning.js';

/**
 * IdleTimeout= shorter than the app's usual start time (the median of the cold starts recorded): the
 * service then spends more time starting than serving between two quiet spells. `file` is where the
 * record was read, named in the message.
 */
export function idleShorterThanSeenStart(cfg: ServiceConfig, record: StatusRecord | null, file: string): CheckWarning[] {
  const idle = cfg.idleTimeoutMs;
  const usual = record === null ? null : usualColdStartMs(record);
  if (idle === null || usual === null || idle >= usual) return [];
  const n = record?.coldStartsMs.length ?? 0;
  return [
    {
      code: 'idle-shorter-than-seen-start',
      message:
        `IdleTimeout ${q(formatTimespan(idle))} is shorter than the time this service usually takes to start, ${formatTimespan(usual)} ` +
        `(the median of the last ${n} cold start${n === 1 ? '' : 's'} recorded in ${q(file)}): it stops sooner after a quiet moment than the next client waits for it; raise IdleTimeout=`,
      ...locationOf(cfg.keyLines, 'Podsock.IdleTimeout'),
    },
  ];
}
