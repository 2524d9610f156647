// podsock-launch (native/launch.c) against podsock's half of the contract (runtime/prestart.ts): the real
// binary carries out plans written by planBytes(), a stub stands in for podman and records what it got,
// and a shell script stands in for node and records what podsock would see (PODSOCK_PLAN,
// PODSOCK_PRESTART, its fds). No systemd needed: LISTEN_FDS and LISTEN_PID are set as systemd sets them.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { commandDigest, fileSignature, parsePrestart, planBytes, PLAN_LIMITS, removePlan, writePlan, type PlanInput } from '../../../src/runtime/prestart.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const LAUNCHER = join(fileURLToPath(new URL('../../..', import.meta.url)), 'build', 'Release', 'podsock-launch');

void t.test('parsePrestart: what launch.c writes, and nothing else', async (t) => {
  t.equal(parsePrestart(undefined), null);
  t.equal(parsePrestart(''), null);
  t.same(parsePrestart('none no plan yet'), { kind: 'none', reason: 'no plan yet' });
  t.same(parsePrestart('pid=42 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=7:/run/x/podsock-Ab12Cd notify=8:/run/x/podsock-Zz99Yy'), {
    kind: 'started',
    pid: 42,
    digest: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    notify: [
      { fd: 7, dir: '/run/x/podsock-Ab12Cd' },
      { fd: 8, dir: '/run/x/podsock-Zz99Yy' },
    ],
  });
  for (const bad of [
    'pid=42 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=7:/run/x/podsock-Ab12Cd', // one notify socket only
    'pid=0 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=7:/a/podsock-Ab12Cd notify=8:/a/podsock-Zz99Yy',
    'pid=42 digest=XYZ notify=7:/a/podsock-Ab12Cd notify=8:/a/podsock-Zz99Yy',
    'pid=42 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=2:/a/podsock-Ab12Cd notify=8:/a/podsock-Zz99Yy', // fd below 3
    'pid=42 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=7:relative/podsock-Ab12Cd notify=8:/a/podsock-Zz99Yy',
    'pid=42 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=7:/a/other notify=8:/a/podsock-Zz99Yy',
    'pid=42 digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef notify=7:/a/podsock-Ab12Cd notify=8:/a/podsock-Zz99Yy extra=1',
    `pid=42 ${'x'.repeat(9000)}`,
  ]) {
    t.equal(parsePrestart(bad)?.kind, 'none', bad.slice(0, 80));
  }
});

void t.test('commandDigest: argv order matters, environment order does not, LISTEN_PID is left out', async (t) => {
  const d = commandDigest('/usr/bin/podman', ['podman', 'run', 'x'], { A: '1', B: '2' });
  t.match(d, /^[0-9a-f]{64}$/);
  t.equal(commandDigest('/usr/bin/podman', ['podman', 'run', 'x'], { B: '2', A: '1' }), d);
  t.equal(commandDigest('/usr/bin/podman', ['podman', 'run', 'x'], { B: '2', A: '1', LISTEN_PID: '9' }), d);
  t.not(commandDigest('/usr/bin/podman', ['podman', 'x', 'run'], { A: '1', B: '2' }), d);
  t.not(commandDigest('/usr/bin/podman', ['podman', 'run', 'x'], { A: '1', B: '3' }), d);
  t.not(commandDigest('/usr/bin/podman', ['podman', 'run', 'x'], { A: '1' }), d);
});

void t.test('commandDigest: SHA-256 over length-prefixed fields, so no two commands share a digest', async (t) => {
  // Words that join alike without their lengths.
  t.not(commandDigest('/p', ['/p', 'ab', 'c'], {}), commandDigest('/p', ['/p', 'a', 'bc'], {}));
  t.not(commandDigest('/p', ['/p'], { A: '1', B: '' }), commandDigest('/p', ['/p'], { A: '1' }), 'an empty variable counts');
  t.not(commandDigest('/p', ['/p', 'A=1'], {}), commandDigest('/p', ['/p'], { A: '1' }), 'an argument is not a variable');
  // A 32-bit hash of the environment collides after some 2^16 tries (birthday bound): VALUE=112789 and
  // VALUE=349192 have the same FNV-1a, so podsock would have adopted a podman started with the other value.
  const argv = ['podman', 'run', 'x'];
  t.not(commandDigest('/usr/bin/podman', argv, { VALUE: '112789' }), commandDigest('/usr/bin/podman', argv, { VALUE: '349192' }), 'two values of a variable');
});

void t.test('commandDigest and planBytes refuse variable names that no environment can hold', async (t) => {
  t.throws(() => commandDigest('/p', ['/p'], { 'A=B': 'C' }), { code: 'PODSOCK_ERR_INTERNAL', message: /variable name 'A=B' is not a name/ });
  t.throws(() => commandDigest('/p', ['/p'], { '': 'C' }), { code: 'PODSOCK_ERR_INTERNAL' });
  const base: PlanInput = { checkFiles: [], mkdirs: [], unlinks: [], notify: [], fds: 0, exe: '/p', argv: ['/p'], env: {} };
  t.throws(() => planBytes({ ...base, env: { 'A=B': 'C' } }), { code: 'PODSOCK_ERR_INTERNAL', message: /variable name 'A=B'/ });
});

void t.test('planBytes: a plan beyond podsock-launch\'s bounds (native/plan.h) is not written', async (t) => {
  const base: PlanInput = { checkFiles: [], mkdirs: [], unlinks: [], notify: [], fds: 0, exe: '/p', argv: ['/p'], env: {} };
  const L = PLAN_LIMITS;
  const cases: Array<[string, Partial<PlanInput>, RegExp]> = [
    ['a long argument', { argv: ['/p', 'x'.repeat(L.wordBytes + 1)] }, /argument 1 is 131072 bytes long, expected at most 131071/],
    ['a long variable', { env: { A: 'x'.repeat(L.wordBytes) } }, /the variable 'A' is 131073 bytes long/],
    ['too many arguments', { argv: Array.from({ length: L.args + 1 }, () => 'a') }, /4097 arguments, expected at most 4096/],
    ['a long path', { mkdirs: [`/${'d'.repeat(L.pathBytes)}`] }, /is 4096 bytes long, expected 1 to 4095/],
    ['a relative path', { unlinks: ['x.cid'] }, /the path 'x.cid' is not absolute/],
    ['a notify directory too long for its socket', { notify: [{ dir: `/${'n'.repeat(L.notifyDirBytes - 15)}/podsock-AAAAAA`, mode: 0o700 }] }, /notify directory .* at most 95 bytes/],
    ['a bad fd count', { fds: L.fds + 1 }, /the fd count 1025 is not an integer from 0 to 1024/],
    ['too many files', { checkFiles: Array.from({ length: L.files + 1 }, (_, i) => `/f${i}`) }, /65 files to check, expected at most 64/],
  ];
  for (const [what, change, message] of cases) t.throws(() => planBytes({ ...base, ...change }), { code: 'PODSOCK_ERR_INTERNAL', message }, what);
  // At the bounds, it is written.
  const notifyDir = `/${'n'.repeat(L.notifyDirBytes - 16)}/podsock-AAAAAA`;
  t.equal(notifyDir.length, L.notifyDirBytes);
  t.ok(planBytes({ ...base, argv: ['/p', 'x'.repeat(L.wordBytes)], notify: [{ dir: notifyDir, mode: 0o711 }], fds: L.fds }).length > L.wordBytes);
});

void t.test('planBytes: per-activation variables stay out; a NUL in a value is refused', async (t) => {
  const base: PlanInput = { checkFiles: [], mkdirs: [], unlinks: [], notify: [], fds: 0, exe: '/p', argv: ['/p'], env: { A: '1', INVOCATION_ID: 'x', JOURNAL_STREAM: '1:2', TRIGGER_UNIT: 'u' } };
  const tokens = planBytes(base).toString('utf8').split('\0');
  t.ok(tokens.includes('A=1'));
  t.notOk(tokens.some((x) => x.startsWith('INVOCATION_ID=') || x.startsWith('JOURNAL_STREAM=') || x.startsWith('TRIGGER_')));
  t.throws(() => planBytes({ ...base, argv: ['/p', 'a\0b'] }), /NUL/);
});

interface LaunchResult {
  code: number | null;
  seen: Record<string, string>;
  stderr: string;
}

void t.test('podsock-launch carries out the plan podsock wrote, and podsock can tell it is its own command', { skip: existsSync(LAUNCHER) ? false : 'podsock-launch is not built (npx node-gyp rebuild)' }, async (t) => {
  const dir = tmpDir(t, 'podsock-launch-test-');
  const runtime = join(dir, 'runtime');
  const config = join(dir, 'svc.container');
  writeFileSync(config, '[Container]\nImage=x\n');
  // The stand-in for podman: records its argv, environment, pid and open fds.
  const stubOut = join(dir, 'stub.out');
  const stub = join(dir, 'podman-stub');
  writeFileSync(stub, `#!/bin/sh\n{ echo "pid=$$"; for a in "$@"; do echo "arg=$a"; done; env | sort | sed 's/^/env=/'; printf 'fds='; for i in 0 1 2 3 4 5 6 7 8 9; do [ -e /proc/$$/fd/$i ] && printf '%s ' $i; done; echo; } > '${stubOut}.tmp'\nmv '${stubOut}.tmp' '${stubOut}'\n`);
  chmodSync(stub, 0o755);
  // The stand-in for node: records what podsock would see, then waits for the stub so that its pid is a child.
  const nodeOut = join(dir, 'node.out');
  const fakeNode = join(dir, 'fake-node.sh');
  writeFileSync(fakeNode, `{ echo "plan=$PODSOCK_PLAN"; echo "prestart=$PODSOCK_PRESTART"; echo "pid=$$"; printf 'fds='; for i in 0 1 2 3 4 5 6 7 8 9; do [ -e /proc/$$/fd/$i ] && printf '%s ' $i; done; echo; } > '${nodeOut}'\n`);

  // A listening socket at fd 3, as systemd passes it.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const listenFd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  t.ok((server.address() as AddressInfo).port > 0);

  const baseEnv: Record<string, string> = { PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: join(dir, 'xdg'), HOME: dir, LISTEN_FDS: '1', INVOCATION_ID: 'aaaa' };
  const launch = (env: Record<string, string>, command = 'run'): Promise<LaunchResult> =>
    new Promise((resolve, reject) => {
      rmSync(nodeOut, { force: true });
      rmSync(stubOut, { force: true });
      // LISTEN_PID must be the launcher's own pid: a shell exports $$ and execs it (systemd sets it the same way).
      const child = spawn('/bin/sh', ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', LAUNCHER, '/bin/sh', fakeNode, command, 'svc', '--config', config], {
        env,
        stdio: ['ignore', 'ignore', 'pipe', listenFd],
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => {
        const seen: Record<string, string> = {};
        for (const line of existsSync(nodeOut) ? readFileSync(nodeOut, 'utf8').split('\n') : []) {
          const eq = line.indexOf('=');
          if (eq > 0) seen[line.slice(0, eq)] = line.slice(eq + 1);
        }
        resolve({ code, seen, stderr });
      });
    });
  const stubSaw = async (): Promise<string[]> => {
    for (let i = 0; i < 200 && !existsSync(stubOut); i++) await new Promise((r) => setTimeout(r, 20));
    return readFileSync(stubOut, 'utf8').split('\n');
  };

  // 1. No plan yet: nothing started, and podsock is told where to write one.
  const first = await launch(baseEnv);
  t.equal(first.code, 0, first.stderr);
  t.equal(first.seen.prestart, 'none no plan yet');
  const planPath = first.seen.plan ?? '';
  const stateDir = process.getuid?.() === 0 ? '/run/podsock/state' : join(dir, 'xdg', 'podsock', 'state');
  t.match(planPath, new RegExp(`^${stateDir}/launch-[0-9a-f]{16}\\.plan$`), 'the plan lives in podsock\'s state directory');
  t.teardown(() => removePlan(planPath));

  // 2. podsock writes a plan as after a successful start (its notify directories by then removed).
  const oldNotify = [join(runtime, 'podsock-AAAAAA'), join(runtime, 'podsock-BBBBBB')];
  const cidfile = join(runtime, 'svc.cid');
  mkdirSync(runtime, { recursive: true });
  writeFileSync(cidfile, 'old');
  const podmanEnv = { PATH: '/usr/bin:/bin', HOME: dir, NOTIFY_SOCKET: join(oldNotify[1] as string, 'notify.sock'), LISTEN_FDS: '1', LISTEN_FDNAMES: 'web', INVOCATION_ID: 'old-id' };
  const argv = [stub, 'run', `--cidfile=${cidfile}`, '--volume', `${oldNotify[0] as string}:/run/podsock-notify`, 'image'];
  writePlan(
    planPath,
    planBytes({
      checkFiles: [fakeNode, config, join(dir, 'absent.container')],
      mkdirs: [runtime],
      unlinks: [cidfile],
      notify: [
        { dir: oldNotify[0] as string, mode: 0o711 },
        { dir: oldNotify[1] as string, mode: 0o700 },
      ],
      fds: 1,
      exe: stub,
      argv,
      env: podmanEnv,
    }),
  );
  t.equal(statSync(planPath).mode & 0o777, 0o600, 'the plan is private');

  const second = await launch({ ...baseEnv, INVOCATION_ID: 'new-id' });
  t.equal(second.code, 0, second.stderr);
  const pre = parsePrestart(second.seen.prestart);
  t.equal(pre?.kind, 'started', `started (${second.seen.prestart ?? ''})`);
  if (pre?.kind !== 'started') return;
  const stubLines = await stubSaw();
  t.ok(stubLines.includes(`pid=${pre.pid}`), 'PODSOCK_PRESTART names podman\'s pid');
  t.notOk(existsSync(cidfile), 'the old cidfile was removed first');
  const [newContainer, newPodman] = pre.notify.map((n) => n.dir) as [string, string];
  for (const [i, n] of pre.notify.entries()) {
    t.equal(join(n.dir, '..'), runtime, 'a fresh directory beside the old one');
    t.not(n.dir, oldNotify[i], 'not the old directory');
    t.equal(statSync(n.dir).mode & 0o777, i === 0 ? 0o711 : 0o700, 'with the mode the plan gives');
    t.ok(statSync(join(n.dir, 'notify.sock')).isSocket(), 'its socket is bound');
    t.equal(statSync(join(n.dir, 'notify.sock')).mode & 0o777, 0o777);
    t.match(second.seen.fds ?? '', new RegExp(`(^| )${n.fd}( |$)`), 'the socket fd reaches podsock');
  }
  const args = stubLines.filter((l) => l.startsWith('arg=')).map((l) => l.slice(4));
  t.same(args, ['run', `--cidfile=${cidfile}`, '--volume', `${newContainer}:/run/podsock-notify`, 'image'], 'the arguments, with the new notify directory');
  const env = Object.fromEntries(stubLines.filter((l) => l.startsWith('env=')).map((l) => [l.slice(4, l.indexOf('=', 4)), l.slice(l.indexOf('=', 4) + 1)]));
  t.equal(env.LISTEN_PID, String(pre.pid), 'LISTEN_PID is podman\'s own pid');
  t.equal(env.INVOCATION_ID, 'new-id', 'per-activation variables come from this activation');
  t.equal(env.NOTIFY_SOCKET, join(newPodman, 'notify.sock'), 'podman\'s NOTIFY_SOCKET is the new socket');
  t.notOk('PODSOCK_PRESTART' in env || 'PODSOCK_PLAN' in env, 'podman does not see podsock-launch\'s word to podsock');
  t.equal((stubLines.find((l) => l.startsWith('fds=')) ?? '').trim(), 'fds=0 1 2 3', 'podman gets stdio and the socket, nothing else');
  // podsock's own command for this activation has the same digest: it adopts the process.
  const expectedEnv = { ...podmanEnv, INVOCATION_ID: 'new-id', NOTIFY_SOCKET: join(newPodman, 'notify.sock') };
  for (const [k, v] of Object.entries(expectedEnv)) t.equal(env[k], v, `podman's ${k}`);
  t.equal(commandDigest(stub, [stub, ...args], expectedEnv), pre.digest, 'podsock computes the same digest for the same command');
  const stubEnv = expectedEnv;
  t.not(commandDigest(stub, [stub, ...args, 'x'], stubEnv), pre.digest, 'and another for another');

  // 3. A change of the configuration makes the plan stale: nothing is started.
  const later = new Date(Date.now() + 5000);
  utimesSync(config, later, later);
  const third = await launch(baseEnv);
  t.match(third.seen.prestart, /^none stale/, 'a changed configuration file makes the plan stale');

  // 4. A file that appears where the configuration is searched for makes it stale too.
  writePlan(planPath, planBytes({ checkFiles: [join(dir, 'absent.container')], mkdirs: [], unlinks: [], notify: [], fds: 1, exe: stub, argv: [stub], env: {} }));
  writeFileSync(join(dir, 'absent.container'), '');
  t.match((await launch(baseEnv)).seen.prestart, /^none stale/, 'a new configuration file in the search path');
  rmSync(join(dir, 'absent.container'));

  // 5. Sockets that differ from the plan's: nothing is started.
  t.equal((await launch({ ...baseEnv, LISTEN_FDS: '2' })).seen.prestart, 'none the sockets passed differ from the plan\'s');

  // 6. A plan that sets a variable twice is refused, and said so on stderr: getenv(3) reads one of the
  // two, and a digest that let duplicates cancel out would let podsock adopt a command it did not build.
  const dupBase = { checkFiles: [], mkdirs: [], unlinks: [], notify: [], fds: 1, exe: stub, argv: [stub, 'run'], env: { A: '1' } };
  writePlan(planPath, Buffer.concat([planBytes(dupBase), Buffer.from('env\0X=injected\0env\0X=injected\0')]));
  const dup = await launch(baseEnv);
  t.equal(dup.code, 0, dup.stderr);
  t.equal(dup.seen.prestart, "none the plan sets the variable 'X' twice", 'the plan is refused');
  t.equal(dup.stderr, `podsock-launch: ignoring the plan '${planPath}': the plan sets the variable 'X' twice\n`, 'with one line on stderr');

  // 7. A plan others could have written is never carried out.
  chmodSync(planPath, 0o620);
  t.match((await launch(baseEnv)).seen.prestart, /^none the plan is not a private regular file/);
  chmodSync(planPath, 0o600);
  writeFileSync(planPath, 'garbage without a terminating NUL');
  t.match((await launch(baseEnv)).seen.prestart, /^none /, 'a corrupt plan');

  // 7b. The runtime directory the plan creates must be a real directory of this user that nobody else can
  // write to: a symbolic link there (or a loose directory) is not chmod-ed, and nothing is started.
  const linked = join(dir, 'linked-runtime');
  const target = join(dir, 'link-target');
  mkdirSync(target, { mode: 0o755 });
  chmodSync(target, 0o755);
  symlinkSync(target, linked);
  const mkBase = { checkFiles: [], unlinks: [], notify: [], fds: 1, exe: stub, argv: [stub, 'run'], env: {} };
  writePlan(planPath, planBytes({ ...mkBase, mkdirs: [linked] }));
  t.equal((await launch(baseEnv)).seen.prestart, 'none cannot create the runtime directory', 'a symbolic link for the runtime directory');
  t.equal(statSync(target).mode & 0o777, 0o755, 'the link\'s target is untouched');
  const loose = join(dir, 'loose-runtime');
  mkdirSync(loose);
  chmodSync(loose, 0o777);
  writePlan(planPath, planBytes({ ...mkBase, mkdirs: [loose] }));
  t.equal((await launch(baseEnv)).seen.prestart, 'none cannot create the runtime directory', 'a runtime directory others can write to');

  // 8. Anything but `run` goes straight to node, told nothing.
  const check = await launch(baseEnv, 'check');
  t.equal(check.seen.plan, '', 'no PODSOCK_PLAN');
  t.equal(check.seen.prestart, '', 'no PODSOCK_PRESTART');
  t.equal(fileSignature(join(dir, 'nope')), '-', 'an absent file\'s signature');
});
