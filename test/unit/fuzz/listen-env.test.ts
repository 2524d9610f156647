// Fuzzes parseListenEnv() with random LISTEN_PID / LISTEN_PIDFDID / LISTEN_FDS / LISTEN_FDNAMES:
// the result is either a list of fds contiguous from 3 with one name each, an empty list with a
// reason, or PodsockError('PODSOCK_ERR_LISTEN_ENV') naming the variable that is wrong. Whatever the
// environment holds, nothing else is thrown and nothing unbounded is allocated.
import { spawn } from 'node:child_process';
import t from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { parseListenEnv, SD_LISTEN_FDS_START } from '../../../src/sd/listen-fds.js';
import { fuzzIterations, fuzzSeed, Rng, show } from './rng.js';

const SEED = fuzzSeed();
const N = fuzzIterations(20_000);
const PID = 4242;
const PIDFD_ID = 98765n;
const MAX_CALL_MS = 2000;

const NUMBERISH = ['', '0', '1', '2', '3', '7', '64', '4242', '04242', '+4242', '-1', ' 1', '1 ', '1\n', '0x10', '1e2', '1.0', '١',
  '2147483644', '2147483645', '4294967296', '99999999999', '18446744073709551615', '18446744073709551616', 'NaN', 'abc', '\u0000', '98765'];
const NAME_PARTS = ['', 'http', 'https', 'web.socket', 'unknown', 'stored', 'connection', ':', '::', 'a b', '\u00e9', '\u0000', '=', 'x'.repeat(300)];

function value(r: Rng, pool: readonly string[]): string | undefined {
  const k = r.int(10);
  if (k === 0) return undefined;
  if (k === 1) return r.bytes(r.int(12)).toString('latin1');
  if (k === 2) return String(r.int(40));
  return r.pick(pool);
}

/** LISTEN_FDNAMES: usually n names for a small n, sometimes any shape. */
function names(r: Rng, fds: string | undefined): string | undefined {
  const k = r.int(10);
  if (k === 0) return undefined;
  const n = fds !== undefined && /^[0-9]{1,2}$/.test(fds) && k < 7 ? Number(fds) + (r.chance(0.8) ? 0 : r.pick([-1, 1])) : r.int(8);
  const list = Array.from({ length: Math.max(0, n) }, () => r.pick(NAME_PARTS.filter((p) => !p.includes(':'))));
  return k === 9 ? r.join(NAME_PARTS, 10) : list.join(':');
}

type Env = Record<string, string | undefined>;

function randomEnv(r: Rng): Env {
  const env: Env = {};
  env.LISTEN_PID = r.chance(0.6) ? String(PID) : value(r, NUMBERISH);
  env.LISTEN_PIDFDID = r.chance(0.7) ? undefined : r.chance(0.5) ? String(PIDFD_ID) : value(r, NUMBERISH);
  env.LISTEN_FDS = r.chance(0.5) ? String(r.range(1, 6)) : value(r, NUMBERISH);
  env.LISTEN_FDNAMES = names(r, env.LISTEN_FDS);
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env;
}

/** The variable a message must name for each way the environment can be wrong. */
const VARS = ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES'];

function check(env: Env, pidfdId: bigint | null): { problem: string | null; outcome: 'fds' | 'none' | 'error' } {
  let res;
  try {
    res = parseListenEnv(env, PID, pidfdId);
  } catch (err) {
    if (!(err instanceof PodsockError)) return { problem: `threw a non-PodsockError: ${String(err)}`, outcome: 'error' };
    if (err.code !== 'PODSOCK_ERR_LISTEN_ENV') return { problem: `code ${err.code}`, outcome: 'error' };
    const named = VARS.filter((v) => err.message.includes(`${v}=`));
    if (named.length === 0) return { problem: `message names no variable: ${show(err.message)}`, outcome: 'error' };
    // The named variable must be present: the message is about what the environment holds.
    if (!named.some((v) => env[v] !== undefined)) return { problem: `message names an unset variable: ${show(err.message)}`, outcome: 'error' };
    return { problem: null, outcome: 'error' };
  }
  if (res.fds.length === 0) {
    if (res.reason === null || res.reason === '') return { problem: 'no fds and no reason', outcome: 'none' };
    return { problem: null, outcome: 'none' };
  }
  if (res.reason !== null) return { problem: `fds with a reason ${show(res.reason)}`, outcome: 'fds' };
  // sd_listen_fds(3): only for us, and only with a well-formed count.
  // Decimal digits only (leading zeros are read as decimal, never octal).
  if (!/^[0-9]+$/.test(env.LISTEN_PID ?? '') || Number(env.LISTEN_PID) !== PID) return { problem: `fds for LISTEN_PID=${show(String(env.LISTEN_PID))}`, outcome: 'fds' };
  if (pidfdId !== null && env.LISTEN_PIDFDID !== undefined && env.LISTEN_PIDFDID !== String(pidfdId)) {
    return { problem: `fds for LISTEN_PIDFDID=${show(env.LISTEN_PIDFDID)}`, outcome: 'fds' };
  }
  if (!/^0*[1-9][0-9]*$/.test(env.LISTEN_FDS ?? '')) {
    return { problem: `fds for LISTEN_FDS=${show(String(env.LISTEN_FDS))}`, outcome: 'fds' };
  }
  const n = Number(env.LISTEN_FDS);
  if (res.fds.length !== n) return { problem: `${res.fds.length} fds for LISTEN_FDS=${n}`, outcome: 'fds' };
  const expectedNames = env.LISTEN_FDNAMES === undefined ? Array.from({ length: n }, () => 'unknown') : env.LISTEN_FDNAMES.split(':');
  for (const [i, f] of res.fds.entries()) {
    if (f.fd !== SD_LISTEN_FDS_START + i) return { problem: `fd #${i} is ${f.fd}`, outcome: 'fds' };
    if (f.name !== expectedNames[i]) return { problem: `fd ${f.fd} is named ${show(f.name)}`, outcome: 'fds' };
  }
  return { problem: null, outcome: 'fds' };
}

void t.test(`parseListenEnv on random environments (seed ${SEED}, ${N} inputs)`, async (t) => {
  const r = new Rng(SEED);
  const failures: string[] = [];
  const counts = { fds: 0, none: 0, error: 0 };
  let maxMs = 0;
  for (let i = 0; i < N; i++) {
    const env = randomEnv(r);
    // Only small counts are allocated here: a huge LISTEN_FDS with matching names cannot be
    // generated, and a huge one without names is exercised below.
    if (Number(env.LISTEN_FDS) > 100000 && env.LISTEN_FDNAMES === undefined) env.LISTEN_FDNAMES = 'x';
    const pidfdId = r.chance(0.5) ? PIDFD_ID : null;
    const start = performance.now();
    const { problem, outcome } = check(env, pidfdId);
    maxMs = Math.max(maxMs, performance.now() - start);
    counts[outcome]++;
    if (problem !== null && failures.length < 5) failures.push(`#${i}: ${problem}; env ${show(JSON.stringify(env))}, pidfd id ${String(pidfdId)}`);
  }
  t.comment(`outcomes ${JSON.stringify(counts)}; slowest call ${maxMs.toFixed(2)} ms`);
  t.same(failures, [], `no failures (replay with PODSOCK_FUZZ_SEED=${SEED})`);
  t.ok(counts.fds > N / 20, `${counts.fds} gave fds`);
  t.ok(counts.none > N / 20, `${counts.none} gave no fds`);
  t.ok(counts.error > N / 20, `${counts.error} were errors`);
  t.ok(maxMs < MAX_CALL_MS, `slowest call ${maxMs.toFixed(2)} ms`);
});

/**
 * Runs parseListenEnv() for LISTEN_FDS=64 and then LISTEN_FDS=`fds` (no LISTEN_FDNAMES) in a child
 * with a 32 MiB heap, so an unbounded allocation kills that child instead of this test process.
 * Resolves with one line per count: the error code or 'N fds', and how the child ended.
 */
function inChild(fds: string): Promise<string[]> {
  const code = [
    `import { parseListenEnv } from ${JSON.stringify(new URL('../../../src/sd/listen-fds.ts', import.meta.url).href)};`,
    `for (const n of ['64', ${JSON.stringify(fds)}]) {`,
    '  try {',
    "    console.log(parseListenEnv({ LISTEN_PID: '1', LISTEN_FDS: n }, 1).fds.length + ' fds');",
    '  } catch (err) {',
    '    console.log(err.code ?? String(err));',
    '  }',
    '}',
  ].join('\n');
  // Only the TypeScript loader of this test process, so the child can import src/*.ts.
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=32', ...loader, '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 120_000,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (status, signal) => {
      const lines = out.trim() === '' ? [] : out.trim().split('\n');
      resolve([...lines, status === 0 ? 'exit 0' : `died (status ${String(status)}, signal ${String(signal)})`]);
    });
  });
}

void t.test('a huge LISTEN_FDS without LISTEN_FDNAMES is refused, not allocated', async (t) => {
  // Without LISTEN_FDNAMES every fd gets the name 'unknown', so the count alone decides how much is
  // allocated. No process can have been passed more fds than fs.nr_open allows (1048576 by default).
  const [normal, huge, end] = await inChild('2147483644');
  t.equal(normal, '64 fds', 'a normal count works in the child');
  t.same([huge, end], ['PODSOCK_ERR_LISTEN_ENV', 'exit 0'], 'LISTEN_FDS=2147483644 is refused');
});
