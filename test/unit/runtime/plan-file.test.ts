// How writePlan()/removePlan() (runtime/prestart.ts) touch the file system, against what another local
// user can plant in a state directory under /tmp: a symbolic link at the plan's name, a world-readable
// file at a temporary name, a directory of theirs. The plan's contents are prestart.test.ts's concern.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { removePlan, writePlan } from '../../../src/runtime/prestart.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const NOBODY = 65534;
const root = process.geteuid?.() === 0;

/** A fresh stand-in for /tmp (0700, ours) and the state directory podsock uses below it. */
function stateDir(t: Test): { top: string; state: string } {
  const tmp = tmpDir(t, 'podsock-plan-');
  const top = join(tmp, 'podsock-1000');
  return { top, state: join(top, 'state') };
}

void t.test('a symbolic link planted at the plan\'s name is replaced, its target untouched', async (t) => {
  const { top, state } = stateDir(t);
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const victim = join(top, '..', 'victim');
  writeFileSync(victim, 'precious');
  const plan = join(state, 'launch-0123456789abcdef.plan');
  symlinkSync(victim, plan);
  writePlan(plan, Buffer.from('podsock-plan\0' + '1\0'));
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'the file the link named is not overwritten');
  t.ok(lstatSync(plan).isFile(), 'the plan is a regular file now');
  symlinkSync(victim, `${plan}.old`);
  removePlan(`${plan}.old`);
  t.equal(readFileSync(victim, 'utf8'), 'precious', 'removing a link leaves its target');
});

void t.test('a file planted at a temporary name never receives the plan', { skip: !root && 'needs root to chown' }, async (t) => {
  const { state } = stateDir(t);
  mkdirSync(state, { recursive: true, mode: 0o700 });
  const plan = join(state, 'launch-0123456789abcdef.plan');
  // The temporary name the plan was once written to, made world-readable by its owner.
  const planted = `${plan}.${process.pid}.tmp`;
  writeFileSync(planted, '');
  chmodSync(planted, 0o666);
  chownSync(planted, NOBODY, NOBODY);
  writePlan(plan, Buffer.from('podsock-plan\0' + '1\0' + 'env\0SECRET=1\0'));
  const st = lstatSync(plan);
  t.equal(st.uid, 0, 'the plan is this user\'s file');
  t.equal(st.mode & 0o777, 0o600, 'readable by this user only');
  t.ok(existsSync(planted), 'the planted file was not renamed into the plan');
  t.equal(readFileSync(planted, 'utf8'), '', 'and it is still empty');
});

void t.test('a state directory of another user is refused with a clear error; nothing is written in it', { skip: !root && 'needs root to chown' }, async (t) => {
  const { top, state } = stateDir(t);
  mkdirSync(state, { recursive: true, mode: 0o777 });
  chmodSync(top, 0o777);
  chmodSync(state, 0o777);
  chownSync(top, NOBODY, NOBODY);
  chownSync(state, NOBODY, NOBODY);
  const plan = join(state, 'launch-0123456789abcdef.plan');
  let err: unknown = null;
  try {
    writePlan(plan, Buffer.from('podsock-plan\0' + '1\0'));
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof PodsockError, `a PodsockError (${String(err)})`);
  t.equal((err as PodsockError).code, 'PODSOCK_ERR_PRIVATE_DIR');
  t.match((err as Error).message, `Refusing to use directory '${top}': found a directory owned by uid ${NOBODY} with mode 0777`);
  t.same(readdirSync(state), [], 'nothing was written there');
  t.equal(statSync(top).mode & 0o777, 0o777, 'and its mode is not changed');
});
