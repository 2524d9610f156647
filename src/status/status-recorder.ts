/**
 * Keeps one service's status file (status-file.ts) up to date from the events the supervisor and the
 * activation already have: starting, ready (with the cold-start time), the active count changing,
 * stopping, and the end (stopped, or failed with the error and the consecutive-failure count).
 *
 * The active count can change thousands of times a second; it is written at most once per
 * WRITE_INTERVAL_MS: a change within the interval arms one unref'd timer for the rest of it, so the
 * last count is written, and nothing is scheduled while the count does not change (an idle service
 * holds no timer). Every other event is written at once. A failure to write is reported once through
 * `onError` and never fails the service.
 *
 * The previous record of the service (from the last podsock that ran it) is read once at construction,
 * so that the cold-start history and the failure count carry over from one activation to the next.
 */
import { COLD_STARTS_KEPT, type StatusRecord } from './status-record.js';
import { readStatusFile, writeStatusFile } from './status-file.js';

/** The active count is written at most this often. */
export const WRITE_INTERVAL_MS = 1000;

/** The clock the recorder uses; injectable so that tests drive the throttle. */
export interface RecorderClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: RecorderClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface StatusRecorderOptions {
  file: string;
  name: string;
  mode: 'handover' | 'proxy';
  sockets: string[];
  image: string;
  idleTimeoutMs: number | null;
  pid: number;
  pidStart: string | null;
  /** Called with the first error writing the file (later ones are dropped). */
  onError: (err: unknown) => void;
  clock?: RecorderClock;
  /** Defaults to writeStatusFile/readStatusFile; tests pass their own. */
  write?: (file: string, r: StatusRecord) => void;
  read?: (file: string) => StatusRecord | null;
}

/** What an activation reports (activation/setup.ts passes it on). */
export interface ActivationStatus {
  starting(): void;
  ready(coldStartMs: number, active: number): void;
  activity(active: number): void;
  stopping(): void;
}

export class StatusRecorder implements ActivationStatus {
  readonly #o: StatusRecorderOptions;
  readonly #clock: RecorderClock;
  readonly #write: (file: string, r: StatusRecord) => void;
  #rec: StatusRecord;
  #lastWrite = -Infinity;
  #pending: unknown = undefined;
  #failedOnce = false;

  constructor(o: StatusRecorderOptions) {
    this.#o = o;
    this.#clock = o.clock ?? realClock;
    this.#write = o.write ?? writeStatusFile;
    let prev: StatusRecord | null = null;
    try {
      prev = (o.read ?? readStatusFile)(o.file);
    } catch {
      // A corrupt or foreign record is replaced; `podsock status` names such a file when it reads it.
    }
    const now = this.#clock.now();
    this.#rec = {
      v: 1,
      name: o.name,
      mode: o.mode,
      sockets: o.sockets,
      image: o.image,
      pid: o.pid,
      pidStart: o.pidStart,
      state: 'starting',
      since: now,
      readyAt: prev?.readyAt ?? null,
      lastColdStartMs: prev?.lastColdStartMs ?? null,
      coldStartsMs: prev?.coldStartsMs ?? [],
      active: 0,
      idleTimeoutMs: o.idleTimeoutMs,
      idleDeadline: null,
      consecutiveFailures: prev?.consecutiveFailures ?? 0,
      lastError: prev?.lastError ?? null,
      lastErrorAt: prev?.lastErrorAt ?? null,
      updatedAt: now,
    };
  }

  /** The record as it stands (a copy). */
  get record(): StatusRecord {
    return { ...this.#rec };
  }

  /** An activation begins: podman is about to start. */
  starting(): void {
    this.#set({ state: 'starting', active: 0, idleDeadline: null });
  }

  /** The container is ready after `coldStartMs`; `active` connections are waiting or served. */
  ready(coldStartMs: number, active: number): void {
    const now = this.#clock.now();
    const ms = Math.max(0, Math.round(coldStartMs));
    this.#set({ state: 'ready', readyAt: now, lastColdStartMs: ms, coldStartsMs: [...this.#rec.coldStartsMs, ms].slice(-COLD_STARTS_KEPT), active, idleDeadline: this.#deadline(active, now) });
  }

  /** The active count changed: written at most once per WRITE_INTERVAL_MS (see the module comment). */
  activity(active: number): void {
    if (active === this.#rec.active) return;
    const now = this.#clock.now();
    this.#rec = { ...this.#rec, active, idleDeadline: this.#rec.state === 'ready' ? this.#deadline(active, now) : null, updatedAt: now };
    const wait = this.#lastWrite + WRITE_INTERVAL_MS - now;
    if (wait <= 0) {
      this.#flush();
      return;
    }
    this.#pending ??= this.#clock.setTimeout(() => {
      this.#pending = undefined;
      this.#flush();
    }, wait);
  }

  /** The container is being stopped (idle, or a stop request). */
  stopping(): void {
    this.#set({ state: 'stopping', idleDeadline: null });
  }

  /** Standalone: the container is gone and podsock waits for the next connection. */
  waiting(): void {
    this.#set({ state: 'waiting', active: 0, idleDeadline: null });
  }

  /**
   * podsock is about to exit: `error` is the failure it ends with (null: a clean stop), `failures` the
   * consecutive-failure count (start-failures.ts), or null to keep the recorded one.
   */
  ended(error: string | null, failures: number | null): void {
    const now = this.#clock.now();
    const f = failures ?? this.#rec.consecutiveFailures;
    this.#set(error === null ? { state: 'stopped', active: 0, idleDeadline: null, consecutiveFailures: f } : { state: 'failed', active: 0, idleDeadline: null, consecutiveFailures: f, lastError: error, lastErrorAt: now });
    this.close();
  }

  /** Drop a pending write. Idempotent. */
  close(): void {
    if (this.#pending !== undefined) this.#clock.clearTimeout(this.#pending);
    this.#pending = undefined;
  }

  #deadline(active: number, now: number): number | null {
    return active === 0 && this.#o.idleTimeoutMs !== null ? now + this.#o.idleTimeoutMs : null;
  }

  #set(change: Partial<StatusRecord>): void {
    const now = this.#clock.now();
    const stateChanged = change.state !== undefined && change.state !== this.#rec.state;
    this.#rec = { ...this.#rec, ...change, ...(stateChanged ? { since: now } : {}), updatedAt: now };
    this.close();
    this.#flush();
  }

  #flush(): void {
    this.#lastWrite = this.#clock.now();
    try {
      this.#write(this.#o.file, this.#rec);
    } catch (err) {
      if (!this.#failedOnce) this.#o.onError(err);
      this.#failedOnce = true;
    }
  }
}
