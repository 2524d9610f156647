// A status record as podsock writes it, for the tests of the status file, recorder, view and command.
import type { StatusRecord } from '../../src/status/status-record.js';

/** A ready proxy-mode service 'web'; `over` replaces fields. */
export function sample(over: Partial<StatusRecord> = {}): StatusRecord {
  return {
    v: 1,
    name: 'web',
    mode: 'proxy',
    sockets: ['fd 3 (TCP 127.0.0.1:8080)'],
    image: 'localhost/web:1',
    pid: 4242,
    pidStart: '123456',
    state: 'ready',
    since: 1_700_000_000_000,
    readyAt: 1_700_000_000_000,
    lastColdStartMs: 812,
    coldStartsMs: [900, 812],
    active: 2,
    idleTimeoutMs: 30_000,
    idleDeadline: null,
    consecutiveFailures: 0,
    lastError: null,
    lastErrorAt: null,
    updatedAt: 1_700_000_001_000,
    ...over,
  };
}
