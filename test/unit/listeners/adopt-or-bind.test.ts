import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { adoptOrBind, removeStaleSocket } from '../../../src/listeners/adopt-or-bind.js';
import { closeFd } from '../../../src/native/fds.js';

void t.test('standalone: binds each --listen address, named, owned, replacing a stale socket file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-aob-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  const first = adoptOrBind({}, process.pid, [`web=${path}`, `@podsock-aob-${process.pid}`]);
  t.teardown(() => first.owned.forEach(closeFd));
  t.equal(first.standalone, true);
  t.same(first.owned, first.listeners.map((l) => l.fd));
  t.match(first.listeners, [{ name: 'web', family: 'unix', path, listening: true }, { name: 'listen', family: 'unix', path: `@podsock-aob-${process.pid}`, listening: true }]);
  first.owned.forEach(closeFd);
  first.owned.length = 0;

  // The socket file is left behind; the next run replaces it.
  t.ok(existsSync(path));
  const again = adoptOrBind({}, process.pid, [path]);
  again.owned.forEach(closeFd);
  removeStaleSocket(path);
  t.notOk(existsSync(path), 'removed');

  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  removeStaleSocket(file);
  t.ok(existsSync(file), 'a regular file is not removed');
});

void t.test('socket-activated: nothing passed is a clear error', async (t) => {
  try {
    adoptOrBind({}, process.pid, []);
    t.fail('expected an error');
  } catch (err) {
    t.ok(err instanceof PodsockError);
    t.equal((err as PodsockError).code, 'PODSOCK_ERR_NO_SOCKETS');
    t.match((err as Error).message, /--listen ADDR/);
  }
});
