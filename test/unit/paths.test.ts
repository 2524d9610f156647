import t from 'tap';
import { runtimeDirFor, stateDirFor } from '../../src/paths.js';

void t.test('the runtime directory: RuntimeDirectory= first, then per user', async (t) => {
  t.equal(runtimeDirFor({ RUNTIME_DIRECTORY: '/run/web:/run/other' }, 1000), '/run/web', 'the first of RuntimeDirectory=');
  t.equal(runtimeDirFor({ RUNTIME_DIRECTORY: '', XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/podsock', 'an empty one does not count');
  t.equal(runtimeDirFor({ XDG_RUNTIME_DIR: '/run/user/0' }, 0), '/run/podsock', 'root');
  t.equal(runtimeDirFor({ XDG_RUNTIME_DIR: '' }, 1000), '/tmp/podsock-1000', 'no XDG_RUNTIME_DIR');
});

void t.test('the state directory: per user, never RuntimeDirectory= (removed at stop)', async (t) => {
  t.equal(stateDirFor({ RUNTIME_DIRECTORY: '/run/web' }, 0), '/run/podsock/state');
  t.equal(stateDirFor({ RUNTIME_DIRECTORY: '/run/web', XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), '/run/user/1000/podsock/state');
  t.equal(stateDirFor({}, 1000), '/tmp/podsock-1000/state');
});
