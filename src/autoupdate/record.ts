/**
 * What `podsock auto-update` remembers of a service, in podsock's state directory (paths.ts) as
 * NAME.auto-update.json: the last outcome, for people and `podsock status`, and the image the service
 * was last found or verified on, which is the previous image for AutoUpdate=local (the local tag has
 * already moved when podsock looks). Written privately (private-files.ts); a file that cannot be
 * read or parsed counts as none.
 */
import { join } from 'node:path';
import { privateDir, readPrivateFile, STATE_DIR_LEVELS, writePrivateFile } from '../private-files.js';

/** The outcome of one service in one `podsock auto-update` run. */
export type UpdateStatus = 'updated' | 'not-updated' | 'pending' | 'rolled-back' | 'failed' | 'skipped';

export interface UpdateRecord {
  /** When (ISO 8601). */
  at: string;
  image: string;
  policy: 'registry' | 'local';
  status: UpdateStatus;
  message: string;
  /** The image the service is on after this run (the verified one), or null when unknown. */
  imageId: string | null;
  /** The image that was tried and refused, on a rollback. */
  refusedImageId: string | null;
}

/** Largest record read back. */
const RECORD_MAX = 64 * 1024;

export function recordPath(stateDir: string, name: string): string {
  return join(stateDir, `${name}.auto-update.json`);
}

export function readRecord(stateDir: string, name: string): UpdateRecord | null {
  try {
    const bytes = readPrivateFile(recordPath(stateDir, name), RECORD_MAX);
    if (bytes === null) return null;
    const r = JSON.parse(bytes.toString('utf8')) as Partial<UpdateRecord>;
    return typeof r.status === 'string' && (typeof r.imageId === 'string' || r.imageId === null) ? (r as UpdateRecord) : null;
  } catch {
    return null;
  }
}

export function writeRecord(stateDir: string, name: string, record: UpdateRecord): void {
  privateDir(stateDir, STATE_DIR_LEVELS);
  writePrivateFile(recordPath(stateDir, name), Buffer.from(`${JSON.stringify(record, null, 2)}\n`));
}
