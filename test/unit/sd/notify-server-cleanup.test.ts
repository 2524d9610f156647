// NotifyServer.close() removes only the names podsock created in the directory it shares with the
// container (the socket, then the directory if empty): a tree, a file or a symbolic link planted there
// stays where it is and is reported, and nothing a link points to is touched.
import { mkdirSync, readFileSync, readdirSync, symlinkSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { PodsockError } from '../../../src/errors.js';
import { NotifyServer } from '../../../src/sd/notify-server.js';
import { tmpDir as tmp } from '../../helpers/tmp-dir.js';

void t.test('a planted tree and symbolic link are left alone and reported; the socket is removed', async (t) => {
  const parent = tmp(t);
  const victim = join(parent, 'victim');
  mkdirSync(victim);
  writeFileSync(join(victim, 'data'), 'precious');
  const errors: PodsockError[] = [];
  const server = await NotifyServer.create({ parentDir: parent, onMessage: () => undefined, onError: (e) => errors.push(e) });
  mkdirSync(join(server.dir, 'tree', 'deeper'), { recursive: true });
  writeFileSync(join(server.dir, 'tree', 'deeper', 'f'), 'x');
  symlinkSync(victim, join(server.dir, 'link'));
  server.close();
  t.same(readdirSync(server.dir).sort(), ['link', 'tree'], 'only the socket went');
  t.ok(existsSync(join(server.dir, 'tree', 'deeper', 'f')), 'the planted tree is not removed by path');
  t.equal(readFileSync(join(victim, 'data'), 'utf8'), 'precious', 'what the link names is untouched');
  t.equal(errors.length, 1, 'one error reported');
  t.match(errors[0]?.message, `Failed to remove the notify socket directory '${server.dir}': ENOTEMPTY`);
});

void t.test('the socket replaced by a symbolic link: the link goes, its target stays', async (t) => {
  const parent = tmp(t);
  const victim = join(parent, 'victim');
  writeFileSync(victim, 'precious');
  const errors: PodsockError[] = [];
  const server = await NotifyServer.create({ parentDir: parent, onMessage: () => undefined, onError: (e) => errors.push(e) });
  unlinkSync(server.socketPath);
  symlinkSync(victim, server.socketPath);
  server.close();
  t.equal(readFileSync(victim, 'utf8'), 'precious');
  t.notOk(existsSync(server.dir), 'the directory, empty then, is removed');
  t.same(errors, []);
});
