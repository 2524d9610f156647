/**
 * The status file: a round trip through the real private-file writer and reader, and every way a file
 * that is not podsock's is refused with an error naming it (corrupt, oversized, another version, a
 * symbolic link, another user's file).
 */
import { chownSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isPodsockError } from '../../../src/errors.js';
import { readStatusFile, statusFileFor, writeStatusFile } from '../../../src/status/status-file.js';
import { parseStatusRecord, serializeStatusRecord, STATUS_MAX_BYTES, usualColdStartMs } from '../../../src/status/status-record.js';
import { sample } from '../../helpers/status-sample.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

void t.test('write and read round trip, in a private state directory', async (t) => {
  const dir = join(tmpDir(t, 'podsock-st-'), 'podsock', 'state');
  const file = statusFileFor(dir, 'web');
  t.equal(file, join(dir, 'web.status'));
  t.equal(readStatusFile(file), null, 'no file yet: null');
  writeStatusFile(file, sample());
  t.same(readStatusFile(file), sample());
  t.equal(lstatSync(dir).mode & 0o777, 0o700, 'the directory is private');
  t.equal(lstatSync(file).mode & 0o777, 0o600, 'the file is private');
  writeStatusFile(file, sample({ state: 'stopped', active: 0 }));
  t.equal(readStatusFile(file)?.state, 'stopped', 'replaced as a whole');
  t.same(readdirSync(dir), ['web.status'], 'no temporary file left');
});

void t.test('what a peer or user controls is bounded when written', async (t) => {
  const long = sample({ lastError: 'x'.repeat(50_000), image: 'i'.repeat(5000), sockets: Array.from({ length: 500 }, () => 's'.repeat(1000)), coldStartsMs: Array.from({ length: 100 }, (_, i) => i) });
  const bytes = serializeStatusRecord(long);
  t.ok(bytes.length < STATUS_MAX_BYTES, `${bytes.length} bytes`);
  const back = parseStatusRecord(bytes, 'f');
  t.equal(back.lastError?.length, 1000);
  t.equal(back.coldStartsMs.length, 8);
  t.same(back.coldStartsMs.slice(-1), [99], 'the newest kept');
});

void t.test('a corrupt, oversized or foreign file is an error naming it', async (t) => {
  const dir = tmpDir(t, 'podsock-st-');
  const file = join(dir, 'web.status');
  const refused = (content: string | null, pattern: RegExp, what: string): void => {
    if (content !== null) writeFileSync(file, content);
    try {
      readStatusFile(file);
      t.fail(`${what}: not refused`);
    } catch (err) {
      t.ok(isPodsockError(err, 'PODSOCK_ERR_STATE_FILE'), `${what}: PODSOCK_ERR_STATE_FILE`);
      t.match((err as Error).message, pattern, what);
      t.match((err as Error).message, file, `${what}: names the file`);
    }
  };
  refused('{"v":1,', /is not one podsock wrote: not JSON/, 'truncated');
  refused('[]', /expected a JSON object/, 'an array');
  refused(JSON.stringify({ ...sample(), v: 2 }), /version '2', expected 1/, 'another version');
  refused(JSON.stringify({ ...sample(), active: -1 }), /field 'active' is invalid \('-1'\)/, 'a negative count');
  refused(JSON.stringify({ ...sample(), state: 'dancing' }), /field 'state' is invalid/, 'an unknown state');
  const { pid: _pid, ...noPid } = sample();
  refused(JSON.stringify(noPid), /field 'pid' is missing/, 'a field missing');
  refused(JSON.stringify(sample({ lastError: 'x'.repeat(STATUS_MAX_BYTES) })), new RegExp(`expected a regular file of uid \\d+ of at most ${STATUS_MAX_BYTES} bytes`), 'oversized');
  writeFileSync(file, JSON.stringify(sample()));
  chownSync(file, 12345, 12345);
  refused(null, /owned by uid 12345/, "another user's file");
  const link = join(dir, 'link.status');
  symlinkSync(join(dir, 'elsewhere'), link);
  try {
    readStatusFile(link);
    t.fail('a symbolic link is followed');
  } catch (err) {
    t.match((err as Error).message, /Cannot read status file '.*link\.status': Refusing to read .*: it is a symbolic link/);
  }
  mkdirSync(join(dir, 'dir.status'));
  t.throws(() => readStatusFile(join(dir, 'dir.status')), { code: 'PODSOCK_ERR_STATE_FILE' }, 'a directory');
});

void t.test('the usual cold start is the median of the recorded ones', async (t) => {
  t.equal(usualColdStartMs({ coldStartsMs: [] }), null);
  t.equal(usualColdStartMs({ coldStartsMs: [500] }), 500);
  t.equal(usualColdStartMs({ coldStartsMs: [9000, 500, 700] }), 700);
  t.equal(usualColdStartMs({ coldStartsMs: [400, 600, 9000, 500] }), 550);
});
