/**
 * `podsock status`: which state directories it reads for root and for other users, one NAME or all,
 * the table and the JSON document, a dead pid shown as not running, files and directories that cannot
 * be read named, and an unknown NAME as an error naming where it looked. Real files; the liveness
 * check is the real one except where a pid must be dead.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { statusCommand, type StatusInput } from '../../../src/cli/status.js';
import { processStartTime } from '../../../src/status/liveness.js';
import { writeStatusFile } from '../../../src/status/status-file.js';
import type { StatusDocument } from '../../../src/status/status-view.js';
import { sample } from '../../helpers/status-sample.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'dist', 'bin', 'podsock.cjs');

function setup(t: Test): { xdg: string; user: string; system: string; run: (argv: string[], over?: Partial<StatusInput>) => { code: number; out: string; err: string } } {
  const base = tmpDir(t, 'podsock-status-');
  const xdg = join(base, 'xdg');
  mkdirSync(xdg);
  mkdirSync(join(base, 'system'));
  const system = join(base, 'system', 'podsock', 'state');
  const run = (argv: string[], over: Partial<StatusInput> = {}): { code: number; out: string; err: string } => {
    let out = '';
    let err = '';
    const code = statusCommand({ argv, env: { XDG_RUNTIME_DIR: xdg }, uid: 1000, systemStateDir: system, now: 1_700_000_010_000, stdout: (s) => (out += s), stderr: (s) => (err += s), ...over });
    return { code, out, err };
  };
  return { xdg, user: join(xdg, 'podsock', 'state'), system, run };
}

const me = { pid: process.pid, pidStart: processStartTime('self') };

void t.test("a user sees their own services and the system's, each with its scope", async (t) => {
  const { user, system, run } = setup(t);
  writeStatusFile(join(user, 'web.status'), sample({ ...me, name: 'web' }));
  writeStatusFile(join(system, 'api.status'), sample({ ...me, name: 'api', mode: 'handover' }));
  const r = run(['--json']);
  t.equal(r.code, 0);
  t.equal(r.err, '');
  const doc = JSON.parse(r.out) as StatusDocument;
  t.same(doc.services.map((s) => [s.name, s.scope, s.running, s.pid]), [['web', 'user', true, process.pid], ['api', 'system', true, process.pid]]);
  t.same(doc.unreadable, []);
  const table = run([]);
  t.match(table.out, /^NAME +SCOPE .*\nweb +user +proxy .*running \(pid \d+\).*\napi +system +handover /);
  t.same(run(['--json'], { uid: 0 }).out.match(/"name": "\w+"/g), ['"name": "api"'], 'root: the system services');
});

void t.test('a recorded pid that is gone, or reused by another process, is not running', async (t) => {
  const { user, run } = setup(t);
  // pid 1 exists, but did not start at this time: a reused pid.
  writeStatusFile(join(user, 'reused.status'), sample({ name: 'reused', pid: 1, pidStart: '1' }));
  const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
  writeStatusFile(join(user, 'gone.status'), sample({ name: 'gone', pid: gone, pidStart: null }));
  const doc = JSON.parse(run(['--json']).out) as StatusDocument;
  t.same(doc.services.map((s) => [s.name, s.state, s.running, s.pid, s.active, s.lastColdStartMs]), [['gone', 'stopped', false, null, 0, 812], ['reused', 'stopped', false, null, 0, 812]]);
});

void t.test('one NAME; an unknown NAME names where it looked', async (t) => {
  const { user, system, run } = setup(t);
  writeStatusFile(join(user, 'web.status'), sample({ ...me, name: 'web' }));
  writeStatusFile(join(user, 'other.status'), sample({ ...me, name: 'other' }));
  const doc = JSON.parse(run(['web', '--json']).out) as StatusDocument;
  t.same(doc.services.map((s) => s.name), ['web']);
  t.throws(() => run(['nope']), {
    code: 'PODSOCK_ERR_UNKNOWN_SERVICE',
    message: `podsock status: no service 'nope' recorded in '${user}' and '${system}'; podsock records a service when 'podsock run nope' first runs`,
  });
  t.throws(() => run(['../x']), { code: 'PODSOCK_ERR_USAGE' }, 'NAME is a service name, not a path');
  t.throws(() => run(['a', 'b']), { code: 'PODSOCK_ERR_USAGE', message: /expected at most one service NAME, got 'a' 'b'/ });
});

void t.test('an unreadable system directory is said, not fatal; a corrupt file is named', async (t) => {
  const { user, system, run } = setup(t);
  writeStatusFile(join(user, 'web.status'), sample({ ...me, name: 'web' }));
  writeFileSync(join(user, 'bad.status'), '{"v":1');
  // A file where the directory should be: readdir fails as it does for a directory another user keeps private.
  mkdirSync(dirname(system), { recursive: true });
  writeFileSync(system, '');
  const r = run(['--json']);
  t.equal(r.code, 0);
  const doc = JSON.parse(r.out) as StatusDocument;
  t.same(doc.services.map((s) => s.name), ['web']);
  t.same(doc.unreadable.map((u) => u.path), [join(user, 'bad.status'), system]);
  t.match(r.err, new RegExp(`podsock status: Status file '${join(user, 'bad.status')}' is not one podsock wrote: not JSON.*, ignoring\\n`));
  t.match(r.err, new RegExp(`podsock status: cannot read the system services in '${system}': ENOTDIR, ignoring\\n`));
  t.throws(() => run(['bad']), { code: 'PODSOCK_ERR_STATE_FILE', message: /Status file '.*bad\.status' is not one podsock wrote/ }, 'asked by NAME, a corrupt file is an error');
  t.throws(() => run(['nope']), { message: new RegExp(`\\('${system}' cannot be read: ENOTDIR\\)`) }, 'the unknown NAME error says the system directory could not be read');
});

void t.test('nothing recorded yet', async (t) => {
  const { run } = setup(t);
  t.equal(run([]).out, 'No services recorded yet: podsock records a service when it first runs it.\n');
  t.same(JSON.parse(run(['--json']).out), { version: 1, services: [], unreadable: [] });
});

void t.test('through the built bin: help, usage and the exit status of an unknown NAME', async (t) => {
  const env = { ...process.env, XDG_RUNTIME_DIR: tmpDir(t, 'podsock-status-bin-') };
  const help = spawnSync(process.execPath, [bin, 'status', '--help'], { env, encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: podsock status \[NAME\] \[--json\]\n/);
  const unknown = spawnSync(process.execPath, [bin, 'status', 'podsock-no-such-service', '--json'], { env, encoding: 'utf8' });
  t.equal(unknown.status, 66);
  t.match(unknown.stderr, /^podsock: podsock status: no service 'podsock-no-such-service' recorded in /);
  t.equal(spawnSync(process.execPath, [bin, 'status', '--bogus'], { env, encoding: 'utf8' }).status, 64);
});
