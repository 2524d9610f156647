/**
 * The status file of one service, `NAME.status` in podsock's state directory (paths.ts stateDirFor()),
 * written and read by private-files.ts's rules: the directory is made private level by level, the file
 * is written to a fresh O_EXCL|O_NOFOLLOW name and renamed into place, and read with O_NOFOLLOW
 * (a symbolic link, a FIFO or another user's file is refused, never followed).
 */
import { dirname, join } from 'node:path';
import { PodsockError, isPodsockError, q } from '../errors.js';
import { privateDir, readPrivateFile, STATE_DIR_LEVELS, writePrivateFile } from '../private-files.js';
import { parseStatusRecord, serializeStatusRecord, STATUS_MAX_BYTES, type StatusRecord } from './status-record.js';

/** The file name suffix of status files. */
export const STATUS_SUFFIX = '.status';

/** Where the status of service `name` is kept in `stateDir`. Pure. */
export function statusFileFor(stateDir: string, name: string): string {
  return join(stateDir, `${name}${STATUS_SUFFIX}`);
}

/** Write `record` to `file` as a whole (making the state directory private first). Throws what privateDir/writePrivateFile throw. */
export function writeStatusFile(file: string, record: StatusRecord): void {
  privateDir(dirname(file), STATE_DIR_LEVELS);
  writePrivateFile(file, serializeStatusRecord(record));
}

/**
 * The record in `file`, or null when there is none. Throws PODSOCK_ERR_STATE_FILE naming the file for
 * anything else: corrupt, too large, a symbolic link, another user's file, or unreadable.
 */
export function readStatusFile(file: string): StatusRecord | null {
  let bytes: Buffer | null;
  try {
    // readPrivateFile refuses a file larger than the limit before reading it.
    bytes = readPrivateFile(file, STATUS_MAX_BYTES);
  } catch (err) {
    const why = isPodsockError(err) ? err.message : (err as Error).message;
    throw new PodsockError('PODSOCK_ERR_STATE_FILE', `Cannot read status file ${q(file)}: ${why}`, { cause: err, details: { file } });
  }
  return bytes === null ? null : parseStatusRecord(bytes, file);
}
