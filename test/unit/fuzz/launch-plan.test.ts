// podsock-launch under AddressSanitizer and UndefinedBehaviorSanitizer. The plan is a file that whoever
// can write podsock's state directory controls, and the launcher reads it before anything else runs:
// 1. the whole launcher, built from binding.gyp's sources with the sanitizers, is given hand-made plans
//    at and beyond every bound of native/plan.h: it refuses each beyond one with a clear reason (on
//    stderr and in PODSOCK_PRESTART) and carries out the one at the bounds, without a report;
// 2. the parser and the command digest (launch-plan-driver.c) get thousands of seeded random and
//    mutated plans in one process: no report, every answer is "ok DIGEST" or "bad REASON", and for each
//    plan that is valid by construction the digest is the one podsock computes (commandDigest).
// Without gcc (and its sanitizer runtimes) this is skipped, except in CI (CI=true), where it fails.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { commandDigest, fileSignature, parsePrestart, PLAN_LIMITS, removePlan, writePlan } from '../../../src/runtime/prestart.js';
import { fuzzIterations, fuzzSeed, mutateBytes, Rng, show } from './rng.js';
import { SANITIZE, SANITIZER_OPTIONS, whySanitizersUnusable } from '../../helpers/sanitizers.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const SEED = fuzzSeed();
const N = fuzzIterations(3000);
const CFLAGS = ['-std=gnu11', '-Wall', '-Wextra', '-D_GNU_SOURCE', ...SANITIZE];
const REPORT = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/;
const L = PLAN_LIMITS;

/** podsock-launch's sources as binding.gyp lists them (a JSON file with # comments). */
function launcherSources(): string[] {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')) as { targets: Array<{ target_name: string; sources: string[] }> };
  const target = gyp.targets.find((x) => x.target_name === 'podsock-launch');
  if (target === undefined) throw new Error('binding.gyp has no podsock-launch target');
  return target.sources.map((s) => join(root, s));
}

function compile(out: string, sources: string[]): void {
  execFileSync('gcc', [...CFLAGS, '-I', join(root, 'native'), ...sources, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
}

const dir = tmpDir(t, 'podsock-launch-asan-');
const missing = whySanitizersUnusable(dir);
if (missing !== null && process.env.CI === 'true') t.fail(`the launcher's sanitizer tests need gcc in CI: ${missing}`);
const skip = missing ?? false;

/** A plan's bytes from its words. */
const plan = (...words: string[]): Buffer => Buffer.from(`${words.join('\0')}\0`, 'utf8');

void t.test('the whole launcher under ASan: every bound of the plan holds, with a clear reason', { skip }, async (t) => {
  const launcher = join(dir, 'podsock-launch');
  compile(launcher, launcherSources());
  const nodeOut = join(dir, 'node.out');
  const fakeNode = join(dir, 'fake-node.sh');
  writeFileSync(fakeNode, `{ echo "plan=$PODSOCK_PLAN"; echo "prestart=$PODSOCK_PRESTART"; } > '${nodeOut}'\n`);
  const config = join(dir, 'svc.container');
  const baseEnv: Record<string, string> = { ...SANITIZER_OPTIONS, PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: join(dir, 'xdg'), HOME: dir, INVOCATION_ID: 'aaaa' };
  const launch = (): Promise<{ code: number | null; plan: string; prestart: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      rmSync(nodeOut, { force: true });
      const child = spawn('/bin/sh', ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', launcher, '/bin/sh', fakeNode, 'run', 'svc', '--config', config], {
        env: baseEnv,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('close', (code) => {
        const seen = existsSync(nodeOut) ? readFileSync(nodeOut, 'utf8') : '';
        resolve({ code, plan: /^plan=(.*)$/m.exec(seen)?.[1] ?? '', prestart: /^prestart=(.*)$/m.exec(seen)?.[1] ?? '', stderr });
      });
    });

  const first = await launch();
  t.equal(first.prestart, 'none no plan yet', first.stderr);
  const planPath = first.plan;
  t.teardown(() => removePlan(planPath));
  const head = ['podsock-plan', '1'];
  const tail = ['fds', '0', 'exe', '/bin/true', 'arg', '/bin/true'];
  const long = (n: number): string => 'd'.repeat(n);
  const refused: Array<[string, Buffer, RegExp]> = [
    // make_notify copied the directory unchecked into a PATH_MAX buffer inside the plan: beyond the plan's own size, ASan sees it.
    ['a notify directory far longer than PATH_MAX', plan(...head, 'notify', `/${long(100_000)}/podsock-AAAAAA`, '700', ...tail), /^the plan's notify directory '\/d{47}\.\.\.' is 100016 bytes long, expected at most 95 \(its socket path must fit sun_path, unix\(7\)\)$/],
    ['a notify directory longer than PATH_MAX', plan(...head, 'notify', `/${long(5000)}/podsock-AAAAAA`, '700', ...tail), /^the plan's notify directory '\/d{47}\.\.\.' is 5016 bytes long, expected at most 95/],
    ['a notify directory one byte too long for its socket', plan(...head, 'notify', `/${long(L.notifyDirBytes - 15)}/podsock-AAAAAA`, '700', ...tail), /^the plan's notify directory .* is 96 bytes long, expected at most 95/],
    ['a notify directory of another shape', plan(...head, 'notify', '/run/podsock-AAAAAAA', '700', ...tail), /^the plan's notify directory '\/run\/podsock-AAAAAAA' is not an absolute path ending in \/podsock-XXXXXX$/],
    ['an argument longer than execve(2) takes', plan(...head, ...tail, 'arg', 'x'.repeat(L.wordBytes + 1)), /^the plan's word 10 is 131072 bytes long, expected at most 131071$/],
    ['a variable longer than execve(2) takes', plan(...head, ...tail, 'env', `A=${'x'.repeat(L.wordBytes - 1)}`), /^the plan's word 10 is 131072 bytes long, expected at most 131071$/],
    ['a path longer than PATH_MAX', plan(...head, 'mkdir', `/${long(L.pathBytes)}`, ...tail), /^the plan's mkdir path '\/d+\.\.\.' is 4096 bytes long, expected 1 to 4095$/],
    ['a relative path to remove', plan(...head, 'unlink', 'svc.cid', ...tail), /^the plan's unlink path 'svc\.cid' is not absolute$/],
    ['too many files to check', plan(...head, ...Array.from({ length: L.files + 1 }, () => ['file', '/nonexistent', '-']).flat(), ...tail), /^the plan has more than 64 files to check$/],
    ['too many directories', plan(...head, ...Array.from({ length: L.mkdirs + 1 }, (_, i) => ['mkdir', join(dir, `m${i}`)]).flat(), ...tail), /^the plan has more than 8 directories to create$/],
    ['too many notify sockets', plan(...head, ...Array.from({ length: L.notify + 1 }, () => ['notify', '/run/x/podsock-AAAAAA', '700']).flat(), ...tail), /^the plan has more than 4 notify sockets$/],
    ['too many arguments', plan(...head, ...tail, ...Array.from({ length: L.args }, () => ['arg', 'a']).flat()), /^the plan has more than 4096 arguments$/],
    ['an empty fd count', plan(...head, 'fds', '', 'exe', '/bin/true', 'arg', '/bin/true'), /^the plan's fd count '' is not a number from 0 to 1024$/],
    ['a signed fd count', plan(...head, 'fds', '+0', 'exe', '/bin/true', 'arg', '/bin/true'), /^the plan's fd count '\+0' is not a number/],
    ['an fd count given twice', plan(...head, ...tail, 'fds', '0'), /^the plan gives the fd count twice$/],
    ['an empty notify mode', plan(...head, 'notify', '/run/x/podsock-AAAAAA', '', ...tail), /^the plan's notify mode '' is not an octal mode up to 0777$/],
    ['a notify mode beyond 0777', plan(...head, 'notify', '/run/x/podsock-AAAAAA', '1777', ...tail), /^the plan's notify mode '1777' is not an octal mode/],
    ['the executable twice', plan(...head, ...tail, 'exe', '/bin/false'), /^the plan names the executable twice$/],
    ['a record cut short', plan(...head, ...tail, 'env'), /^the plan ends inside a record \('env'\)$/],
    ['a variable without a name', plan(...head, ...tail, 'env', '=1'), /^the plan's variable '=1' is not NAME=VALUE$/],
    ['a variable set twice', plan(...head, ...tail, 'env', 'A=1', 'env', 'B=2', 'env', 'A=1'), /^the plan sets the variable 'A' twice$/],
    ['a per-activation variable', plan(...head, ...tail, 'env', 'INVOCATION_ID=x'), /^the plan's variable 'INVOCATION_ID=x' is one taken from each activation$/],
    ['a control character in a quoted value', plan(...head, ...tail, 'env', 'A\nB'), /^the plan's variable 'A\?B' is not NAME=VALUE$/],
    ['a plan larger than 1 MiB', Buffer.concat([plan(...head, ...tail), Buffer.alloc(L.bytes)]), /^the plan is \d+ bytes long, expected 1 to 1048576$/],
  ];
  for (const [what, bytes, reason] of refused) {
    writePlan(planPath, bytes);
    const r = await launch();
    t.notMatch(r.stderr, REPORT, `${what}: no sanitizer report`);
    t.equal(r.code, 0, `${what}: node ran`);
    t.match(r.prestart, /^none /, `${what}: nothing started`);
    const why = r.prestart.slice(5);
    t.match(why, reason, `${what}: ${why}`);
    t.equal(r.stderr, `podsock-launch: ignoring the plan '${planPath}': ${why}\n`, `${what}: one line on stderr`);
  }

  // At every bound at once: carried out, and the digest is podsock's.
  const runtime = join(dir, 'r'.repeat(L.notifyDirBytes - '/podsock-AAAAAA'.length - dir.length - 1));
  mkdirSync(runtime, { recursive: true });
  const notifyDirs = [join(runtime, 'podsock-AAAAAA'), join(runtime, 'podsock-BBBBBB')] as const;
  t.equal(Buffer.byteLength(notifyDirs[0]), L.notifyDirBytes, 'notify directories of the longest length');
  const argv = ['/bin/true', 'x'.repeat(L.wordBytes), `--volume=${notifyDirs[0]}:/run/notify`];
  const env = { A: 'y'.repeat(L.wordBytes - 2), NOTIFY_SOCKET: `${notifyDirs[1]}/notify.sock` };
  const files = Array.from({ length: L.files }, () => ['file', fakeNode, fileSignature(fakeNode)]).flat();
  const notify = notifyDirs.flatMap((d) => ['notify', d, '711']);
  writePlan(planPath, plan(...head, ...files, ...notify, 'fds', '0', 'exe', '/bin/true', ...argv.flatMap((a) => ['arg', a]), ...Object.entries(env).map(([k, v]) => ['env', `${k}=${v}`]).flat()));
  const r = await launch();
  t.notMatch(r.stderr, REPORT, 'at the bounds: no sanitizer report');
  t.equal(r.stderr, '', 'at the bounds: nothing on stderr');
  const pre = parsePrestart(r.prestart);
  t.equal(pre?.kind, 'started', `at the bounds: podman started (${r.prestart.slice(0, 300)})`);
  if (pre?.kind !== 'started') return;
  const made = pre.notify.map((n) => n.dir);
  t.same(made.map((d) => d.length), notifyDirs.map((d) => d.length), 'the new notify directories are as long as the old');
  const sub = (s: string): string => s.split(notifyDirs[0]).join(made[0]).split(notifyDirs[1]).join(made[1]);
  const podmanEnv = { ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, sub(v)])), INVOCATION_ID: 'aaaa' };
  t.equal(pre.digest, commandDigest('/bin/true', argv.map(sub), podmanEnv), 'podsock computes the same digest');
});

// Words for the generator and the mutations: every keyword, the bounds' neighbours, shapes that are
// almost right.
const KEYWORDS = ['file', 'mkdir', 'unlink', 'notify', 'fds', 'exe', 'arg', 'env'];
const TOKENS = [...KEYWORDS, 'podsock-plan', '1', '\0', '/', '/podsock-', 'podsock-XXXXXX', '/podsock-AAAAAA', '=', '==', '0777', '7777', '-1', '+1',
  ' 1', '1024', '1025', '99999', 'INVOCATION_ID=', 'TRIGGER_X=1', '\n', "'", 'é', 'a'.repeat(100), 'b'.repeat(1000), '/'.repeat(300),
  `/${'c'.repeat(5000)}`, `/${'n'.repeat(80)}/podsock-AAAAAA`];

/** A valid plan from random choices, and the digest its command must have. */
function randomPlan(r: Rng): { bytes: Buffer; digest: string } {
  const words: string[] = ['podsock-plan', '1'];
  const notify: Array<[string, string]> = [];
  for (let i = r.int(L.notify + 1); i > 0; i--) {
    const old = `/${r.join(['run', 'user', '0', 'x', 'podsock', 'é'], 4) || 'r'}/podsock-${r.join(['A', 'b', '9', 'Z'], 6).padEnd(6, 'q')}`;
    if (Buffer.byteLength(old) > L.notifyDirBytes || notify.some(([o]) => o.includes(old) || old.includes(o))) continue;
    notify.push([old, `${old.slice(0, -6)}fuzz0${notify.length}`]);
    words.push('notify', old, r.pick(['700', '711', '0', '777']));
  }
  for (let i = r.int(4); i > 0; i--) words.push('file', `/${r.join(['etc', 'x', 'a.container'], 3)}`, r.pick(['-', '1:2:3:4']));
  for (let i = r.int(3); i > 0; i--) words.push(r.pick(['mkdir', 'unlink']), `/${r.join(['run', 'podsock', 'svc.cid'], 3)}`);
  const alphabet = ['a', '-', '=', ' ', 'é', '✓', '/', ...notify.map(([o]) => o)];
  const exe = `/usr/bin/${r.join(['pod', 'man'], 3)}`;
  const argv = [exe, ...Array.from({ length: r.int(20) }, () => r.join(alphabet, 12))];
  const env: Record<string, string> = {};
  for (let i = r.int(12); i > 0; i--) env[r.join(['A', 'B', '_', '9', 'é'], 6) || 'V'] = r.join(alphabet, 10);
  words.push('fds', String(r.int(L.fds + 1)), 'exe', exe, ...argv.flatMap((a) => ['arg', a]), ...Object.entries(env).map(([k, v]) => ['env', `${k}=${v}`]).flat());
  const sub = (s: string): string => notify.reduce((acc, [o, n]) => acc.split(o).join(n), s);
  return { bytes: plan(...words), digest: commandDigest(sub(exe), argv.map(sub), Object.fromEntries(Object.entries(env).map(([k, v]) => [k, sub(v)]))) };
}

/** `bytes` with one word made longer inside: a path's parent, an argument, a number, around every bound. */
function lengthenWord(r: Rng, bytes: Buffer): Buffer {
  const words = bytes.toString('latin1').split('\0');
  const i = r.int(words.length - 1);
  const w = words[i] as string;
  const at = r.int(w.length + 1);
  words[i] = w.slice(0, at) + 'L'.repeat(r.pick([1, 60, 100, 4100, 20_000])) + w.slice(at);
  return Buffer.from(words.join('\0'), 'latin1');
}

void t.test(`the plan parser and digest under ASan: ${N} random and mutated plans (seed ${SEED})`, { skip }, async (t) => {
  const driver = join(dir, 'launch-plan-driver');
  compile(driver, [join(root, 'test', 'unit', 'fuzz', 'launch-plan-driver.c'), ...launcherSources().filter((s) => !s.endsWith('/launch.c'))]);
  const r = new Rng(SEED);
  const inputs: Array<{ bytes: Buffer; digest: string | null }> = [];
  for (let i = 0; i < N; i++) {
    const base = randomPlan(r);
    if (r.chance(0.2)) {
      inputs.push(base);
      continue;
    }
    let bytes = r.chance(0.05) ? r.bytes(r.int(200)) : r.chance(0.15) ? lengthenWord(r, base.bytes) : mutateBytes(r, base.bytes, TOKENS);
    // Now and then a word just beyond execve's bound, or a plan just beyond the size bound.
    if (r.chance(0.01)) bytes = Buffer.concat([bytes, Buffer.from(`arg\0${'w'.repeat(L.wordBytes + r.int(2))}\0`)]);
    if (r.chance(0.003)) bytes = Buffer.concat([bytes, Buffer.alloc(L.bytes - bytes.length + r.int(2))]);
    inputs.push({ bytes, digest: null });
  }
  const frames = inputs.flatMap(({ bytes }) => {
    const n = Buffer.alloc(4);
    n.writeUInt32LE(bytes.length);
    return [n, bytes];
  });
  const run = spawnSync(driver, [], { input: Buffer.concat(frames), env: { ...process.env, ...SANITIZER_OPTIONS }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const lines = run.stdout.split('\n').slice(0, -1);
  if (run.status !== 0 || REPORT.test(run.stderr)) {
    const at = inputs[lines.length];
    t.fail(`the driver failed (exit ${String(run.status)}) on plan ${lines.length}: ${at === undefined ? '?' : show(at.bytes)}\n${run.stderr.split('\n').slice(0, 12).join('\n')}`);
    return;
  }
  t.equal(lines.length, inputs.length, 'one answer per plan');
  let ok = 0;
  let wrong = 0;
  for (const [i, line] of lines.entries()) {
    const input = inputs[i] as { bytes: Buffer; digest: string | null };
    if (!/^(ok [0-9a-f]{64}|bad [\x20-\x7e]{1,255})$/.test(line) || (input.digest !== null && line !== `ok ${input.digest}`)) {
      if (wrong++ < 5) t.fail(`plan ${i}: ${line.slice(0, 300)}${input.digest !== null ? ` (expected ok ${input.digest})` : ''}: ${show(input.bytes)}`);
    }
    if (line.startsWith('ok ')) ok++;
  }
  t.equal(wrong, 0, 'every answer is "ok DIGEST" or "bad REASON", and a valid plan\'s digest is podsock\'s');
  t.ok(ok > N * 0.2, `valid plans were parsed (${ok})`);
  t.ok(lines.length - ok > N * 0.3, `mutated plans were refused (${lines.length - ok})`);
});
