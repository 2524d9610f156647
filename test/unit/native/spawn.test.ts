/**
 * The addon's process spawn (posix_spawn + pidfd): what the child gets (argv, exactly the given
 * environment, fds 0..n-1 and nothing else, default signal dispositions), how its exit is reported,
 * and that a signal never reaches a process once it has exited.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { nativeSpawnAvailable, spawnProcess } from '../../../src/native/spawn.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const dir = tmpDir(t, 'podsock-spawn-test-');

function run(file: string, argv: string[], env: Record<string, string>, stdio: number[]): Promise<{ code: number | null; signal: number | null; pid: number }> {
  return new Promise((resolve) => {
    const p = spawnProcess(file, argv, env, stdio, (code, signal) => resolve({ code, signal, pid: p.pid }));
  });
}

void t.test('the kernel and the addon support it here', async (t) => {
  t.equal(nativeSpawnAvailable(), true);
});

void t.test('argv, exactly the given environment, and the exit status', async (t) => {
  const out = join(dir, 'env.txt');
  const fd = openSync(out, 'w');
  t.teardown(() => closeSync(fd));
  const r = await run('/bin/sh', ['/bin/sh', '-c', 'echo "$0|$1|$A|${HOME-unset}"; env | sort; exit 7', 'x y', "it's"], { A: '1 2', PATH: '/usr/bin:/bin' }, [-1, fd, 2]);
  t.equal(r.code, 7);
  t.equal(r.signal, null);
  const text = readFileSync(out, 'utf8').split('\n');
  t.equal(text[0], "x y|it's|1 2|unset");
  t.same(text.slice(1).filter((l) => l !== '' && !l.startsWith('PWD=') && !l.startsWith('SHLVL=') && !l.startsWith('_=')), ['A=1 2', 'PATH=/usr/bin:/bin']);
});

void t.test('fds 3.. are the given ones, stdin is /dev/null, nothing else is inherited', async (t) => {
  const l1 = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 4 });
  const l2 = listenSocket({ kind: 'unix', path: join(dir, 'l2.sock'), backlog: 4 });
  t.teardown(() => {
    closeFd(l1);
    closeFd(l2);
  });
  const out = join(dir, 'fds.txt');
  const fd = openSync(out, 'w');
  t.teardown(() => closeSync(fd));
  // stdio order reversed on purpose: the child's fd 3 is l2, fd 4 is l1.
  const r = await run('/bin/sh', ['/bin/sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "; echo; readlink /proc/self/fd/0; readlink /proc/self/fd/3; readlink /proc/self/fd/4'], { PATH: '/usr/bin:/bin' }, [-1, fd, 2, l2, l1]);
  t.equal(r.code, 0);
  const [fds, stdin, fd3, fd4] = readFileSync(out, 'utf8').split('\n');
  // 0-4 plus the one ls opens for /proc/self/fd.
  t.equal(fds, '0 1 2 3 4 5 ', 'exactly fds 0..4 (and ls own directory fd)');
  t.equal(stdin, '/dev/null');
  t.match(fd3, /^socket:\[\d+\]$/);
  t.match(fd4, /^socket:\[\d+\]$/);
  t.not(fd3, fd4);
  t.equal(inspectFd(l1).listening, true, 'the parent keeps its own fds');
});

void t.test('signals: default dispositions in the child, the terminating signal reported, none after exit', async (t) => {
  // Node ignores SIGPIPE, and an ignored disposition survives exec: the child must start with none ignored or blocked.
  const out = join(dir, 'status.txt');
  const fd = openSync(out, 'w');
  t.teardown(() => closeSync(fd));
  const r = await run('/bin/cat', ['/bin/cat', '/proc/self/status'], {}, [-1, fd, 2]);
  t.equal(r.code, 0);
  const status = readFileSync(out, 'utf8');
  // Signals 1-31 (32 and 33 belong to the C library, which no program may change).
  const mask = (name: string): bigint => BigInt(`0x${new RegExp(`^${name}:\\s+([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'ffff'}`) & 0x7fffffffn;
  t.equal(mask('SigIgn'), 0n, 'no signal ignored (Node ignores SIGPIPE and SIGXFSZ)');
  t.equal(mask('SigBlk'), 0n, 'no signal blocked');

  const p = await new Promise<{ code: number | null; signal: number | null; kill: (s: number) => boolean }>((resolve) => {
    const child = spawnProcess('/bin/sleep', ['/bin/sleep', '30'], {}, [-1, 1, 2], (code, signal) => resolve({ code, signal, kill: child.kill }));
    setTimeout(() => t.equal(child.kill(constants.signals.SIGTERM), true, 'kill reaches a running child'), 100);
  });
  t.equal(p.code, null);
  t.equal(p.signal, constants.signals.SIGTERM);
  t.equal(p.kill(constants.signals.SIGKILL), false, 'no signal once it has exited');
});

void t.test('a file that cannot be executed throws with the errno, and no exit is reported', async (t) => {
  let exited = false;
  t.throws(() => spawnProcess(join(dir, 'missing'), ['missing'], {}, [-1, 1, 2], () => (exited = true)), { code: 'PODSOCK_ERR_NATIVE', message: /spawn '.*missing'.*ENOENT/ });
  t.throws(() => spawnProcess(dir, ['dir'], {}, [-1, 1, 2], () => (exited = true)), { code: 'PODSOCK_ERR_NATIVE', message: /EACCES/ });
  await new Promise((r) => setTimeout(r, 200));
  t.equal(exited, false);
});

void t.test('bad arguments are refused before anything runs', async (t) => {
  t.throws(() => spawnProcess('/bin/true', ['true', 'a\0b'], {}, [-1, 1, 2], () => undefined), { code: 'PODSOCK_ERR_NATIVE', message: /NUL/ });
  t.throws(() => spawnProcess('/bin/true', ['true'], {}, [-1, 1], () => undefined), { code: 'PODSOCK_ERR_NATIVE' });
  t.throws(() => spawnProcess('/bin/true', ['true'], {}, [-1, 1, 2, 99999], () => undefined), { code: 'PODSOCK_ERR_NATIVE', message: /EBADF/ });
});

void t.test('many children in parallel each report their own status', async (t) => {
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => run('/bin/sh', ['/bin/sh', '-c', `exit ${i}`], {}, [-1, 1, 2])));
  t.same(rs.map((r) => r.code), Array.from({ length: 40 }, (_, i) => i));
  t.equal(new Set(rs.map((r) => r.pid)).size, 40);
});

void t.test('listenPid: the child gets LISTEN_PID equal to its own pid, and nothing else changes', async (t) => {
  const out = join(dir, 'listen-pid.txt');
  const fd = openSync(out, 'w');
  t.teardown(() => closeSync(fd));
  const r = await run2('/bin/sh', ['/bin/sh', '-c', 'echo "$LISTEN_PID $$ $LISTEN_FDS $A"'], { LISTEN_FDS: '1', A: 'x' }, [-1, fd, 2], { listenPid: true });
  t.equal(r.code, 0);
  const [lp, self, fds, a] = readFileSync(out, 'utf8').trim().split(' ');
  t.equal(lp, self, 'LISTEN_PID is the pid of the process that runs');
  t.equal(lp, String(r.pid));
  t.equal(fds, '1');
  t.equal(a, 'x');

  const out2 = join(dir, 'no-listen-pid.txt');
  const fd2 = openSync(out2, 'w');
  t.teardown(() => closeSync(fd2));
  await run2('/bin/sh', ['/bin/sh', '-c', 'echo "[${LISTEN_PID-unset}]"'], {}, [-1, fd2, 2], {});
  t.equal(readFileSync(out2, 'utf8').trim(), '[unset]', 'only when asked');
});

function run2(
  file: string,
  argv: string[],
  env: Record<string, string>,
  stdio: number[],
  options: { listenPid?: boolean },
): Promise<{ code: number | null; signal: number | null; pid: number }> {
  return new Promise((resolve) => {
    const p = spawnProcess(file, argv, env, stdio, (code, signal) => resolve({ code, signal, pid: p.pid }), options);
  });
}
