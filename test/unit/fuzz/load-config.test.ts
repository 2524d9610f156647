// Fuzzes the one configuration gate, loadConfig(), through a real file: mutated .container files
// (byte flips, NULs, invalid UTF-8, duplicated and deleted lines, random keys, sections, quotes and
// backslashes, huge lines). Every outcome must be a frozen ServiceConfig or a PodsockError with a
// catalogue code whose message names the file - and `file:line` when the error carries a line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ERROR_CODES, PodsockError } from '../../../src/errors.js';
import { loadConfig, type ServiceConfig } from '../../../src/config/load.js';
import { FLAG_NAMES, PODSOCK_KEYS, type PodsockKey } from '../../../src/config/podsock-section.js';
import { MAX_LINE_LENGTH } from '../../../src/config/unit-syntax.js';
import { fuzzIterations, fuzzSeed, mutateBytes, Rng, show } from './rng.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const SEED = fuzzSeed();
const N = fuzzIterations(4000);
/** Per call; a normal call takes well under a millisecond, so this only catches pathological cases. */
const MAX_CALL_MS = 2000;

const CORPUS = [
  '[Container]\nImage=localhost/app:1\nExec=/usr/bin/node /app/server.js --port 8080\n',
  '[Unit]\nDescription=web\n\n[Container]\nImage=docker.io/library/nginx\nExec=nginx -g "daemon off;"\nEnvironment="A=b c" D=e\n' +
    'Volume=/srv/data:/data:ro\nPodmanArgs=--memory 1g\nContainerName=web-1\n\n[Podsock]\nMode=handover\nReady=notify\nIdleTimeout=1h 30min\n',
  '# comment\n; also a comment\n[Container]\nImage=i\nExec=sh -c \\\n  "echo \\x41 \\u00e9"\nLabel=a=b\nNetwork=none\n' +
    '[Podsock]\nMode=proxy\nBackend=web=80 api=81\nReady=http:/health\nMaxConnections=100\nStartTimeout=2min\nStopTimeout=5s\n',
  '[Container]\nImage=i\nReadOnly=yes\nAddCapability=NET_ADMIN\nUser=1\nGroup=2\nHealthCmd="a || b"\n[Podsock]\nMode=proxy\nBackend=8080\nReady=healthy\n',
  '\ufeff[Container]\r\nImage=i\r\nEnvironment=A=1\r\nEnvironment=\r\nPublishPort=127.0.0.1:8080:80\r\n[X-Mine]\r\nAnything=goes\r\n',
];

const TOKENS = [
  '[', ']', '=', '\\', '\\\n', '"', "'", '#', ';', '\n', '\r', '\r\n', '\t', ' ', '$', '$(touch /tmp/x)', '`id`', '%n', '%%',
  'é', '\ufeff', '😀', '\\x', '\\xff', '\\u', '\\U0010ffff', '\\0', '\\777', '\\s', '""', "''",
  '[Container]', '[Podsock]', '[Service]', '[Bogus]', '[X-Ok]', '[]', '[a]b]',
  '\nImage=', '\nExec=', '\nEnvironment=', '\nPodmanArgs=', '\nVolume=', '\nMount=', '\nContainerName=', '\nPublishPort=',
  '\nMode=', '\nReady=', '\nIdleTimeout=', '\nStartTimeout=', '\nBackend=', '\nMaxConnections=', '\nImag=', '\nFrob=', '\n=x',
  '--name', '--rm', '-d', '--network=host', '--frob', 'proxy', 'handover', 'infinity', '0', '-1', '99999999999999',
  'http:/', 'tcp', 'web=80', '65536', '5min', '1.5h',
];

type Outcome = { ok: true; cfg: ServiceConfig } | { ok: false; err: unknown };

function attempt(file: string): { outcome: Outcome; ms: number } {
  const start = performance.now();
  let outcome: Outcome;
  try {
    outcome = { ok: true, cfg: loadConfig({ name: 'fuzz', configFile: file, env: {}, uid: 0, flags: {}, extraArgs: [] }) };
  } catch (err) {
    outcome = { ok: false, err };
  }
  return { outcome, ms: performance.now() - start };
}

/** What is wrong with an outcome, or null. */
function problem(o: Outcome, file: string): string | null {
  if (o.ok) {
    const c = o.cfg;
    if (!Object.isFrozen(c) || !Object.isFrozen(c.podmanOptions)) return 'ServiceConfig is not frozen';
    if (c.source !== file) return `source is ${show(String(c.source))}`;
    if (typeof c.image !== 'string' || c.image === '') return 'empty image';
    if (!c.podmanOptions.every((a) => typeof a === 'string')) return 'non-string podman option';
    for (const ms of [c.startTimeoutMs, c.stopTimeoutMs, c.idleTimeoutMs ?? 0]) {
      if (!Number.isSafeInteger(ms) || ms < 0) return `bad time ${ms}`;
    }
    return null;
  }
  const err = o.err;
  if (!(err instanceof PodsockError)) return `threw a non-PodsockError: ${String(err)}`;
  if (!(err.code in ERROR_CODES) || !err.code.startsWith('PODSOCK_ERR_')) return `unknown code ${err.code}`;
  if (err.code === 'PODSOCK_ERR_INTERNAL') return `internal error: ${err.message}`;
  if (!err.message.includes(file)) return `message does not name the file: ${show(err.message)}`;
  const line = err.details.line;
  if (line !== undefined) {
    if (!Number.isSafeInteger(line) || (line as number) < 1) return `bad line ${String(line)}`;
    if (!err.message.includes(`${file}:${String(line)}`)) return `message does not name line ${String(line)}: ${show(err.message)}`;
  }
  // Messages go to the journal. Some quote a whole value (see 'long values' below), so the hard bound
  // is what the line limit guarantees: a value quoted at most twice.
  if (err.message.length > 2 * MAX_LINE_LENGTH + 1000) return `message is ${err.message.length} characters long`;
  return null;
}

const tmp = (): string => tmpDir(t, 'podsock-fuzz-');

void t.test(`loadConfig on mutated .container files (seed ${SEED}, ${N} inputs)`, async (t) => {
  const dir = tmp();
  const file = join(dir, 'fuzz.container');
  const r = new Rng(SEED);
  const failures: string[] = [];
  const codes = new Map<string, number>();
  let accepted = 0;
  let maxMs = 0;
  for (let i = 0; i < N; i++) {
    const base = Buffer.from(r.pick(CORPUS), 'utf8');
    let input: Buffer;
    const kind = r.int(10);
    if (kind < 8) input = mutateBytes(r, base, TOKENS, 6);
    else if (kind === 8) input = Buffer.from(r.join(TOKENS, 80), 'utf8');
    else input = Buffer.concat([base, r.bytes(r.int(64))]);
    writeFileSync(file, input);
    const { outcome, ms } = attempt(file);
    maxMs = Math.max(maxMs, ms);
    if (outcome.ok) accepted++;
    else if (outcome.err instanceof PodsockError) codes.set(outcome.err.code, (codes.get(outcome.err.code) ?? 0) + 1);
    const p = problem(outcome, file) ?? (ms > MAX_CALL_MS ? `took ${ms.toFixed(0)} ms` : null);
    if (p !== null && failures.length < 5) failures.push(`#${i}: ${p}; input ${show(input)}`);
  }
  t.comment(`accepted ${accepted}/${N}; rejected by code ${JSON.stringify(Object.fromEntries(codes))}; slowest call ${maxMs.toFixed(1)} ms`);
  t.same(failures, [], `no failures (replay with PODSOCK_FUZZ_SEED=${SEED})`);
  // A fuzzer that only ever hits one path proves little: both outcomes must be common.
  t.ok(accepted > N / 20, `accepted ${accepted} of ${N}`);
  t.ok(N - accepted > N / 5, `rejected ${N - accepted} of ${N}`);
  t.ok((codes.get('PODSOCK_ERR_CONFIG') ?? 0) > 0, 'PODSOCK_ERR_CONFIG was produced');
  t.ok(maxMs < MAX_CALL_MS, `slowest call ${maxMs.toFixed(1)} ms < ${MAX_CALL_MS} ms`);
});

void t.test('hostile bytes get an error naming file and line', async (t) => {
  const dir = tmp();
  const file = join(dir, 'bad.container');
  const cases: Array<[string, Buffer, RegExp]> = [
    ['NUL on line 3', Buffer.from('[Container]\nImage=i\nExec=a\0b\n'), /:3: contains a NUL byte/],
    ['invalid UTF-8 on line 2', Buffer.concat([Buffer.from('[Container]\nImage='), Buffer.from([0xc3, 0x28, 0x0a])]), /:2: file is not valid UTF-8$/],
    ['overlong encoding on line 4', Buffer.concat([Buffer.from('[Container]\nImage=i\n\nExec=/'), Buffer.from([0xc0, 0xaf]), Buffer.from('\n')]), /:4: file is not valid UTF-8$/],
    ['a line over the limit', Buffer.from(`[Container]\nImage=i\nExec=${'a'.repeat(MAX_LINE_LENGTH)}\n`), /:3: line is longer than 65536 characters$/],
    ['a key outside any section', Buffer.from('Image=i\n[Container]\n'), /:1: assignment 'Image=i' is outside of any section/],
    ['an unknown section', Buffer.from('[Container]\nImage=i\n\n[Bogus]\nA=b\n'), /:4: unknown section \[Bogus\]/],
    ['an unterminated quote', Buffer.from('[Container]\nImage=i\nExec=sh -c "echo\n'), /:3: /],
    ['a file over 1 MiB', Buffer.alloc(1024 * 1024 + 1, 0x23), /: file is larger than 1048576 bytes$/],
  ];
  for (const [what, bytes, re] of cases) {
    writeFileSync(file, bytes);
    const { outcome, ms } = attempt(file);
    t.ok(ms < MAX_CALL_MS, `${what}: ${ms.toFixed(1)} ms`);
    if (outcome.ok) {
      t.fail(`${what}: accepted`);
      continue;
    }
    t.equal(problem(outcome, file), null, `${what}: a well-formed error`);
    t.equal((outcome.err as PodsockError).code, 'PODSOCK_ERR_CONFIG', what);
    t.match((outcome.err as Error).message, re, what);
    t.ok((outcome.err as Error).message.startsWith(file), `${what}: starts with the file name`);
  }
});

void t.test('worst-case shapes stay fast', async (t) => {
  const dir = tmp();
  const file = join(dir, 'big.container');
  // Shapes that make naive regexes or quadratic loops blow up, each near the size limits.
  const shapes: Array<[string, string]> = [
    ['backslash runs', `[Container]\nImage=i\nExec=${'\\'.repeat(MAX_LINE_LENGTH - 8)}\n`],
    ['continuations', `[Container]\nImage=i\nExec=a \\\n${'b \\\n'.repeat(15_000)}c\n`],
    ['quotes', `[Container]\nImage=i\nExec=${'"a" '.repeat(16_000)}\n`],
    ['unbalanced quotes', `[Container]\nImage=i\nExec=${'"\\"'.repeat(21_000)}\n`],
    ['escapes', `[Container]\nImage=i\nExec=${'\\x41\\u00e9'.repeat(6_000)}\n`],
    ['many sections', `${'[Container]\n'.repeat(80_000)}Image=i\n`],
    ['many empty assignments', `[Container]\nImage=i\n${'Environment=A=1\nEnvironment=\n'.repeat(30_000)}`],
    ['brackets', `[Container]\nImage=i\n[${'['.repeat(60_000)}\n`],
    ['equals', `[Container]\nImage=i\nEnvironment=${'='.repeat(60_000)}\n`],
    ['blank lines', `[Container]\n${'\r\n'.repeat(400_000)}Image=i\n`],
  ];
  for (const [what, text] of shapes) {
    writeFileSync(file, text);
    const { outcome, ms } = attempt(file);
    t.equal(problem(outcome, file), null, `${what}: ${outcome.ok ? 'accepted' : (outcome.err as Error).message.slice(0, 120)}`);
    t.ok(ms < MAX_CALL_MS, `${what}: ${ms.toFixed(1)} ms`);
  }
});

void t.test('long values are quoted as an excerpt in messages', async (t) => {
  const dir = tmp();
  const file = join(dir, 'long.container');
  const long = 'x'.repeat(60_000);
  // Each of these is rejected; the message should show an excerpt, as unit-syntax.ts and
  // split-words.ts do, not a 60 KB journal line.
  const cases: Array<[string, string]> = [
    ['unknown key', `[Container]\nImage=i\nK${long}=1\n`],
    ['boolean', `[Container]\nImage=i\nReadOnly=${long}\n`],
    ['environment', `[Container]\nImage=i\nEnvironment==${long}\n`],
    ['Mode', `[Container]\nImage=i\n[Podsock]\nMode=${long}\n`],
    ['Ready', `[Container]\nImage=i\n[Podsock]\nReady=${long}\n`],
    ['Backend', `[Container]\nImage=i\n[Podsock]\nMode=proxy\nBackend=${long}\n`],
    ['MaxConnections', `[Container]\nImage=i\n[Podsock]\nMaxConnections=${long}\n`],
    ['Exec escape', `[Container]\nImage=i\nExec=${'\\q'.repeat(30_000)}\n`],
    ['section header', `[Container]\nImage=i\n[${'['.repeat(60_000)}\n`],
  ];
  for (const [what, text] of cases) {
    writeFileSync(file, text);
    const { outcome } = attempt(file);
    if (outcome.ok) {
      t.fail(`${what}: accepted`);
      continue;
    }
    t.equal(problem(outcome, file), null, `${what}: a well-formed error`);
    const length = (outcome.err as Error).message.length;
    t.ok(length < 1000, `${what}: message is ${length} characters`);
  }
});

void t.test(`command-line flags and '--' arguments (seed ${SEED})`, async (t) => {
  // The other inputs of the gate: [Podsock] flags and podman run arguments after '--'. An error names
  // the flag, the '--' arguments or the file - whichever holds the bad value.
  const dir = tmp();
  const file = join(dir, 'flags.container');
  writeFileSync(file, '[Container]\nImage=i\n[Podsock]\nMode=proxy\nBackend=8080\n');
  const r = new Rng(SEED + 3);
  const values = ['', 'proxy', 'handover', 'notify', 'tcp', 'http:/x', 'healthy', 'started', '0', '1', '90s', 'infinity', '-1', '5min',
    '8080', 'web=80 api=81', '99999999999', 'x\0y', "'", '"', '$(id)', ' ', '\n'];
  const args = ['--rm', '-d', '--name', 'n', '--name=bad name', '-e', 'A=1', '--env', '--network=none', '-p', '8080:80', '--frob', 'img',
    'localhost/x:1', 'sh', '-c', 'echo $(id)', '--', '-v', '/a:/b', '', '--privileged', '-it', '--pull=never', '--health-cmd', 'none'];
  const failures: string[] = [];
  let accepted = 0;
  const count = Math.max(1, Math.floor(N / 2));
  for (let i = 0; i < count; i++) {
    const flags: Partial<Record<PodsockKey, string>> = {};
    for (const key of PODSOCK_KEYS) if (r.chance(0.3)) flags[key] = r.chance(0.8) ? r.pick(values) : r.bytes(r.int(12)).toString('utf8');
    const extraArgs = r.chance(0.5) ? [] : Array.from({ length: r.int(8) }, () => r.pick(args));
    const configFile = r.chance(0.8) ? file : undefined;
    let p: string | null = null;
    try {
      loadConfig({ name: 'fuzz', ...(configFile === undefined ? {} : { configFile }), env: { PODSOCK_CONFIG_DIR: dir }, uid: 0, flags, extraArgs });
      accepted++;
    } catch (err) {
      if (!(err instanceof PodsockError)) p = `threw a non-PodsockError: ${String(err)}`;
      else if (err.code === 'PODSOCK_ERR_INTERNAL') p = `internal error: ${err.message}`;
      else {
        const names = [file, "arguments after '--'", "'fuzz'", ...Object.values(FLAG_NAMES)];
        if (!names.some((n) => err.message.includes(n))) p = `message names neither a flag, the arguments nor the file: ${show(err.message)}`;
      }
    }
    if (p !== null && failures.length < 5) failures.push(`#${i}: ${p}; flags ${show(JSON.stringify(flags))} args ${show(JSON.stringify(extraArgs))}`);
  }
  t.same(failures, [], `no failures (replay with PODSOCK_FUZZ_SEED=${SEED})`);
  t.ok(accepted > 0 && accepted < count, `accepted ${accepted} of ${count}`);
});
