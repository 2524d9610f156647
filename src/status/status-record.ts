/**
 * What podsock records about one service for `podsock status` and `podsock check`: a small JSON
 * object, version 1, kept in the state directory (status-file.ts). This file is the shape and the two
 * pure directions: serialise (bounded: every string and list a peer or user controls is cut to a
 * limit) and parse (defensive: a file is input, and anything that is not a record podsock wrote is a
 * PODSOCK_ERR_STATE_FILE naming the file and what was expected).
 */
import { PodsockError, q } from '../errors.js';

/** Where the service is in its life, as the podsock that owns it last recorded. */
export const STATUS_STATES = ['starting', 'ready', 'stopping', 'stopped', 'failed', 'waiting'] as const;
export type StatusState = (typeof STATUS_STATES)[number];

/** A status file is never larger than this; a larger one is not podsock's. */
export const STATUS_MAX_BYTES = 16 * 1024;
/** How many of the last cold-start times are kept (the usual start time is their median). */
export const COLD_STARTS_KEPT = 8;
const MAX_SOCKETS = 32;
const MAX_TEXT = 300;
const MAX_ERROR = 1000;

export interface StatusRecord {
  v: 1;
  name: string;
  mode: 'handover' | 'proxy';
  /** The listening sockets, described as `podsock run` logs them. */
  sockets: string[];
  /** Image= as configured. */
  image: string;
  /** podsock's pid, and its start time in clock ticks (proc(5), /proc/PID/stat field 22) to tell a reused pid apart. */
  pid: number;
  pidStart: string | null;
  state: StatusState;
  /** When `state` began (ms since the epoch). */
  since: number;
  /** When the container last became ready, or null. */
  readyAt: number | null;
  /** Milliseconds to ready of the last activation that became ready: from podsock's start under systemd, else from the activation's. */
  lastColdStartMs: number | null;
  /** The last COLD_STARTS_KEPT cold-start times, oldest first. */
  coldStartsMs: number[];
  /** Connections (and UDP flows) active at `updatedAt`. */
  active: number;
  idleTimeoutMs: number | null;
  /** When the idle timer fires if nothing connects (ms since the epoch), or null when it is not armed. */
  idleDeadline: number | null;
  consecutiveFailures: number;
  lastError: string | null;
  lastErrorAt: number | null;
  updatedAt: number;
}

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/** The record as bytes, every field a user or peer controls cut to its limit. Pure. */
export function serializeStatusRecord(r: StatusRecord): Buffer {
  const bounded: StatusRecord = {
    ...r,
    name: cut(r.name, MAX_TEXT),
    image: cut(r.image, MAX_TEXT),
    sockets: r.sockets.slice(0, MAX_SOCKETS).map((s) => cut(s, MAX_TEXT)),
    coldStartsMs: r.coldStartsMs.slice(-COLD_STARTS_KEPT),
    lastError: r.lastError === null ? null : cut(r.lastError, MAX_ERROR),
  };
  return Buffer.from(`${JSON.stringify(bounded)}\n`);
}

type Check = (v: unknown) => boolean;
const time: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const count: Check = time;
const nullable =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const text =
  (max: number): Check =>
  (v) =>
    typeof v === 'string' && v.length <= max;

const FIELDS: Record<keyof StatusRecord, Check> = {
  v: (v) => v === 1,
  name: text(MAX_TEXT),
  mode: (v) => v === 'handover' || v === 'proxy',
  sockets: (v) => Array.isArray(v) && v.length <= MAX_SOCKETS && v.every(text(MAX_TEXT)),
  image: text(MAX_TEXT),
  pid: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0,
  pidStart: nullable((v) => typeof v === 'string' && /^\d{1,20}$/.test(v)),
  state: (v) => (STATUS_STATES as readonly unknown[]).includes(v),
  since: time,
  readyAt: nullable(time),
  lastColdStartMs: nullable(count),
  coldStartsMs: (v) => Array.isArray(v) && v.length <= COLD_STARTS_KEPT && v.every(count),
  active: count,
  idleTimeoutMs: nullable(count),
  idleDeadline: nullable(time),
  consecutiveFailures: count,
  lastError: nullable(text(MAX_ERROR)),
  lastErrorAt: nullable(time),
  updatedAt: time,
};

function bad(file: string, what: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_STATE_FILE', `Status file ${q(file)} is not one podsock wrote: ${what}; remove it (podsock writes it again at the next activation)`, {
    details: { file },
  });
}

/**
 * The record in `bytes` (the contents of `file`, named in errors). Throws PODSOCK_ERR_STATE_FILE for
 * anything else: too large, not JSON, another version, a field missing or of the wrong type. Pure.
 */
export function parseStatusRecord(bytes: Uint8Array, file: string): StatusRecord {
  if (bytes.length > STATUS_MAX_BYTES) throw bad(file, `${bytes.length} bytes, expected at most ${STATUS_MAX_BYTES}`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw bad(file, `not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(file, 'expected a JSON object');
  const o = v as Record<string, unknown>;
  if (o.v !== 1) throw bad(file, `version ${q(o.v)}, expected 1`);
  for (const [key, ok] of Object.entries(FIELDS)) {
    if (!ok(o[key])) throw bad(file, `field ${q(key)} is ${o[key] === undefined ? 'missing' : `invalid (${q(o[key])})`}`);
  }
  const out = {} as Record<string, unknown>;
  for (const key of Object.keys(FIELDS)) out[key] = o[key];
  return out as unknown as StatusRecord;
}

/** The median of the recorded cold starts (the app's usual start time), or null when none was recorded. Pure. */
export function usualColdStartMs(r: Pick<StatusRecord, 'coldStartsMs'>): number | null {
  const s = [...r.coldStartsMs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
}
