// sweepNotifyDirs removes the notify directories whose socket nobody holds (a podsock killed outright
// left them) and nothing else: live sockets (probed for real), this process's own, other names, other
// kinds of file, a directory still being set up, and what someone else put in a leftover directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { openDgram, probeUnixSocket } from '../../../src/native/dgram.js';
import { NotifyServer } from '../../../src/sd/notify-server.js';
import { EMPTY_MIN_AGE_MS, SOCKET_MIN_AGE_MS, sweepNotifyDirs } from '../../../src/sd/notify-sweep.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const ADDON = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'build', 'Release', 'podsock_native.node');

/** The clock of a sweep that runs once the sockets made in the test are old enough to be looked at. */
const later = (): number => Date.now() + SOCKET_MIN_AGE_MS + 1000;

/** A notify directory whose socket was bound and is bound no more, as a killed podsock leaves it. */
function leftover(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { mode: 0o700 });
  openDgram(join(dir, 'notify.sock')).close(); // close(2) leaves the socket file behind, unbound
  return dir;
}

void t.test('the probe tells a bound datagram socket from a socket file nobody holds', async (t) => {
  const dir = tmpDir(t);
  const live = openDgram(join(dir, 'live.sock'));
  t.teardown(() => live.close());
  openDgram(join(dir, 'dead.sock')).close();
  writeFileSync(join(dir, 'file'), '');
  t.equal(probeUnixSocket(join(dir, 'live.sock')), 'bound');
  t.equal(probeUnixSocket(join(dir, 'dead.sock')), 'unbound');
  t.equal(probeUnixSocket(join(dir, 'file')), 'unbound', 'connect(2) on a file that is no socket: ECONNREFUSED too');
  t.equal(probeUnixSocket(join(dir, 'missing')), 'unknown', 'ENOENT is not taken for gone');
  // A stream socket there is someone's too (EPROTOTYPE).
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(dir, 'stream.sock'), resolve));
  t.teardown(() => server.close());
  t.equal(probeUnixSocket(join(dir, 'stream.sock')), 'bound');
  // The probe sends nothing: the live socket's queue stays empty.
  const got: unknown[] = [];
  live.startReceiving((batch) => got.push(...batch), () => undefined);
  await new Promise((r) => setTimeout(r, 50));
  t.same(got, [], 'nothing reached the bound socket');
});

void t.test('a socket a killed process bound counts as gone', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'notify.sock');
  // A child binds the socket and is killed with it bound: nothing of it runs at exit.
  const script = `const m={exports:{}};process.dlopen(m,${JSON.stringify(ADDON)});m.exports.dgramOpen(${JSON.stringify(sock)});process.kill(process.pid,'SIGKILL')`;
  const r = spawnSync(process.execPath, ['-e', script]);
  t.equal(r.signal, 'SIGKILL');
  t.ok(existsSync(sock), 'the socket file outlives its process');
  t.equal(probeUnixSocket(sock), 'unbound');
});

void t.test('only leftovers go', async (t) => {
  const parent = tmpDir(t);
  const gone1 = leftover(parent, 'podsock-aB3dE9');
  const gone2 = leftover(parent, 'podsock-ZZZZZZ');
  const other = await NotifyServer.create({ parentDir: parent, onMessage: () => undefined });
  t.teardown(() => other.close());
  const mine = leftover(parent, 'podsock-mine01'); // unbound, but named as this process's own
  const wrongName = leftover(parent, 'podsock-toolong1');
  const notPodsock = leftover(parent, 'other-abcdef');
  // A directory being set up (mkdtemp done, no socket yet) stays; one that old stays no longer.
  const young = join(parent, 'podsock-young1');
  mkdirSync(young);
  const old = join(parent, 'podsock-old001');
  mkdirSync(old);
  const past = (Date.now() - EMPTY_MIN_AGE_MS - 1000) / 1000;
  utimesSync(old, past, past);
  // Not a socket: a regular file where the socket would be.
  const fileDir = join(parent, 'podsock-file01');
  mkdirSync(fileDir);
  writeFileSync(join(fileDir, 'notify.sock'), '');
  utimesSync(fileDir, past, past);
  // A symbolic link with a leftover's name, pointing at a leftover elsewhere: not followed.
  const elsewhere = tmpDir(t);
  const target = leftover(elsewhere, 'podsock-target');
  symlinkSync(target, join(parent, 'podsock-link01'));
  // A leftover that holds something podsock did not put there: its socket goes, the rest stays, reported.
  const planted = leftover(parent, 'podsock-plant1');
  writeFileSync(join(planted, 'precious'), 'x');

  const r = sweepNotifyDirs(parent, { keep: [mine], now: later });
  t.same(r.removed.sort(), [gone1, gone2, old].sort(), 'the leftovers and the old empty directory');
  t.equal(r.failed.length, 1, 'one failure');
  t.equal(r.failed[0]?.dir, planted);
  t.match(r.failed[0]?.error, /ENOTEMPTY/);
  t.same(readdirSync(planted), ['precious'], 'what someone else put there stays');
  for (const d of [other.dir, mine, wrongName, notPodsock, young, fileDir, join(parent, 'podsock-link01')]) t.ok(existsSync(d), `${d} stays`);
  t.ok(existsSync(join(target, 'notify.sock')), 'nothing behind the link is touched');
  t.ok(existsSync(other.socketPath), 'the live socket stays');
});

void t.test('a directory of another user is left alone', async (t) => {
  const parent = tmpDir(t);
  const dir = leftover(parent, 'podsock-forei1');
  const r = sweepNotifyDirs(parent, { keep: [], now: later, uid: (process.geteuid?.() ?? 0) + 1 });
  t.same(r, { removed: [], failed: [] });
  t.ok(existsSync(join(dir, 'notify.sock')));
  t.same(sweepNotifyDirs(parent, { keep: [], now: later }).removed, [dir], 'the same directory goes for its owner');
});

void t.test('a socket nobody holds that is younger than SOCKET_MIN_AGE_MS stays (it may be being bound)', async (t) => {
  const parent = tmpDir(t);
  const dir = leftover(parent, 'podsock-young2');
  t.same(sweepNotifyDirs(parent, { keep: [] }).removed, [], 'just made: stays');
  t.same(sweepNotifyDirs(parent, { keep: [], now: later }).removed, [dir], 'old enough: goes');
});

void t.test('a probe that cannot be made ends the sweep with one failure', async (t) => {
  const parent = tmpDir(t);
  leftover(parent, 'podsock-aaaaa1');
  leftover(parent, 'podsock-aaaaa2');
  let calls = 0;
  const r = sweepNotifyDirs(parent, {
    keep: [],
    now: later,
    probe: () => {
      calls++;
      throw new Error('EMFILE');
    },
  });
  t.equal(calls, 1, 'one probe, then it stops');
  t.equal(r.failed.length, 1);
  t.match(r.failed[0]?.error, /cannot probe notify\.sock, the sweep stops: EMFILE/);
  t.same(r.removed, []);
});

void t.test('a missing parent directory sweeps nothing and throws nothing', async (t) => {
  t.same(sweepNotifyDirs(join(tmpDir(t), 'missing'), { keep: [] }), { removed: [], failed: [] });
});

void t.test('the probe decides: bound or unknown keeps the directory', async (t) => {
  const parent = tmpDir(t);
  const a = leftover(parent, 'podsock-aaaaaa');
  const b = leftover(parent, 'podsock-bbbbbb');
  const r = sweepNotifyDirs(parent, { keep: [], now: later, probe: (p) => (p.startsWith(a) ? 'bound' : 'unknown') });
  t.same(r.removed, []);
  t.ok(existsSync(a) && existsSync(b));
});
