// Temporary directories for unit tests, in os.tmpdir() rather than tap's fixture directory: a unix
// socket's path must fit in sun_path (108 bytes, unix(7)), which a path under the checkout may not.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/**
 * A new empty directory `os.tmpdir()/PREFIXxxxxxx`, removed with everything in it when `t` ends.
 * The prefix only names the test in a listing of /tmp.
 */
export function tmpDir(t: Test, prefix = 'podsock-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
