// Randomized inputs: the parsers must only ever throw PodsockError, and must stay fast (no hangs,
// no super-linear blowups). Seeded, so a failure is reproducible: the seed is in the test name.
import { fixedSpecifiers } from '../../helpers/specifiers.js';
import t from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { containerSectionToArgs } from '../../../src/config/container-section.js';
import { parsePodmanRunArgs } from '../../../src/config/podman-args.js';
import { resolvePodsockSettings } from '../../../src/config/podsock-section.js';
import { splitEnvironment, splitWords } from '../../../src/config/split-words.js';
import { parseTimespan } from '../../../src/config/timespan.js';
import { parseUnitBytes, parseUnitText } from '../../../src/config/unit-syntax.js';

const SEED = Number(process.env.PODSOCK_FUZZ_SEED ?? 20240611);
const ROUNDS = 5000;
/** Generous: a single call on a few hundred characters takes microseconds; a loaded shared machine can stall a call for a while. */
const SLOW_MS = 2000;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

const UNIT_CORPUS = [
  '[Container]\nImage=docker.io/library/nginx\nExec=nginx -g "daemon off;"\n',
  '[Container]\nImage=i\nEnvironment="A=b c" D=e\nVolume=./d:/d:Z\nPodmanArgs=--memory 1g --name x\n',
  '# c\n[Unit]\nDescription=x\n[Container]\nImage=i\nExec=sh -c \\\n  "echo \\x41 \\u00e9"\n[Podsock]\nMode=proxy\nBackend=web=80 api=81\nReady=http:/h\n',
  '[Container]\nImage=i\nReadOnly=yes\nAddCapability=NET_ADMIN\nUser=1\nGroup=2\nHealthCmd="a || b"\n[Podsock]\nIdleTimeout=1h 30min\n',
  '[Container]\nImage=i\nEnvironment=A=1\nEnvironment=\nLabel=a=b bare\nMount=type=bind,src=./x,dst=/y\n',
];
const UNIT_ALPHABET = ['[', ']', '=', '\\', '"', "'", '#', ';', '\n', '\r', '\r\n', '\t', ' ', '\u0000', 'a', 'Z', '0', '9', '%',
  '$', '(', ')', '-', '--', '\u00e9', '\ufeff', '\ud83d\ude00', '\\x', '\\u', '\\0', 'Image=', 'Exec=', 'Mode=', '[Container]',
  '[Podsock]', 'Environment=', 'PodmanArgs=', 'Volume=', 'IdleTimeout=', 'Backend=', 'Ready=', '--name', '-d', '=proxy'];

const SPAN_CORPUS = ['90', '90s', '5min', '1h 30min', '2min30s', '500ms', '100us', 'infinity', '1.5h', '.5s', '3w 3d', '12.34 .56'];
const SPAN_ALPHABET = ['0', '1', '5', '9', '.', ' ', '\t', '-', '+', 's', 'ms', 'm', 'min', 'h', 'd', 'w', 'M', 'y', 'us', '\u00b5s',
  'infinity', 'sec', 'x', 'e', '999999999999'];

const ARG_ALPHABET = ['-', '--', '-e', '--env', '-itp', '--rm', '--name', '--detach', '-d', '=', 'img', 'sh', '--', '--net', 'x',
  '--network=host', '--frob', '-v', '/a:/b', '--rm=false', '-p8080:80', ''];

function mutate(rand: () => number, base: string, alphabet: readonly string[]): string {
  let s = base;
  const n = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (s.length + 1));
    const op = rand();
    if (op < 0.45) s = s.slice(0, at) + (alphabet[Math.floor(rand() * alphabet.length)] as string) + s.slice(at);
    else if (op < 0.75) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 4));
    else if (op < 0.9) s = s.slice(0, at) + s.slice(at, at + Math.floor(rand() * 20)).repeat(2) + s.slice(at);
    else s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 0x3000)) + s.slice(at);
  }
  return s;
}

function random(rand: () => number, alphabet: readonly string[], maxParts: number): string {
  let s = '';
  const n = Math.floor(rand() * maxParts);
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)] as string;
  return s;
}

/** Runs fn; returns a description of a problem (non-PodsockError throw, or too slow), or null. */
function check(fn: () => unknown): string | null {
  const start = performance.now();
  try {
    fn();
  } catch (err) {
    if (!(err instanceof PodsockError)) return `threw ${String(err)}`;
    if (err.message.length === 0) return 'empty message';
  }
  const ms = performance.now() - start;
  return ms > SLOW_MS ? `took ${ms.toFixed(0)} ms` : null;
}

function fullPipeline(text: string): void {
  const unit = parseUnitText(text, 'fuzz.container');
  for (const s of unit.sections) {
    if (s.name === 'Container') containerSectionToArgs(s, { file: 'fuzz.container', pathExists: () => false, specifiers: fixedSpecifiers() });
    if (s.name === 'Podsock') resolvePodsockSettings(s, 'fuzz.container', {});
  }
}

void t.test(`unit-file syntax and section mapping (seed ${SEED})`, async (t) => {
  const rand = rng(SEED);
  const problems: string[] = [];
  let accepted = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const text = rand() < 0.8 ? mutate(rand, UNIT_CORPUS[i % UNIT_CORPUS.length] as string, UNIT_ALPHABET) : random(rand, UNIT_ALPHABET, 60);
    const p = check(() => fullPipeline(text)) ?? check(() => parseUnitBytes(Buffer.from(text, 'latin1'), 'f'));
    if (p !== null) problems.push(`${p}: ${JSON.stringify(text)}`);
    try {
      fullPipeline(text);
      accepted++;
    } catch {
      // counted as rejected
    }
  }
  t.same(problems.slice(0, 5), []);
  // The mutations must exercise both paths, or the test proves little.
  t.ok(accepted > ROUNDS / 20, `accepted ${accepted} of ${ROUNDS}`);
  t.ok(accepted < ROUNDS, `rejected ${ROUNDS - accepted} of ${ROUNDS}`);
});

void t.test(`time spans (seed ${SEED})`, async (t) => {
  const rand = rng(SEED + 1);
  const problems: string[] = [];
  let accepted = 0;
  for (let i = 0; i < ROUNDS * 2; i++) {
    const text = rand() < 0.6 ? mutate(rand, SPAN_CORPUS[i % SPAN_CORPUS.length] as string, SPAN_ALPHABET) : random(rand, SPAN_ALPHABET, 12);
    const p = check(() => {
      const ms = parseTimespan(text, 'X');
      if (ms !== null && !(Number.isSafeInteger(ms) && ms >= 0 && ms <= 2 ** 31 - 1)) throw new Error(`out of range: ${ms}`);
      accepted++;
    });
    if (p !== null) problems.push(`${p}: ${JSON.stringify(text)}`);
  }
  t.same(problems.slice(0, 5), []);
  t.ok(accepted > ROUNDS / 10, `accepted ${accepted}`);
});

void t.test(`word splitting and podman arguments (seed ${SEED})`, async (t) => {
  const rand = rng(SEED + 2);
  const problems: string[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const value = random(rand, UNIT_ALPHABET, 30);
    for (const fn of [() => splitWords(value, 'w'), () => splitEnvironment(value, 'w')]) {
      const p = check(fn);
      if (p !== null) problems.push(`${p}: ${JSON.stringify(value)}`);
    }
    const args = Array.from({ length: Math.floor(rand() * 10) }, () => random(rand, ARG_ALPHABET, 3));
    const p = check(() => parsePodmanRunArgs(args, 'a'));
    if (p !== null) problems.push(`${p}: ${JSON.stringify(args)}`);
  }
  t.same(problems.slice(0, 5), []);
});

// The bounds below catch quadratic work (tens of seconds to minutes at these sizes), not speed: they are
// wide because the machines that run the suite are shared and sometimes heavily loaded.
void t.test('large inputs stay linear', async (t) => {
  const big = `[Container]\nImage=i\n${'Environment=A=1 B="x y" C=\\x41\n'.repeat(20_000)}`;
  let start = performance.now();
  const unit = parseUnitText(big, 'f');
  const section = unit.sections[0];
  if (section === undefined) throw new Error('no section');
  const c = containerSectionToArgs(section, { file: 'f', pathExists: () => false, specifiers: fixedSpecifiers() });
  t.equal(c.options.length, 20_000 * 6);
  t.ok(performance.now() - start < 30_000, 'under 30 s for 20000 lines');
  start = performance.now();
  const words = splitWords('"a b" '.repeat(10_000), 'w');
  t.equal(words.length, 10_000);
  t.ok(performance.now() - start < 20_000, 'under 20 s for 10000 words');
  // 40000 continuation lines join into 40000 spaces: an empty value, so a reset.
  t.same(parseUnitText(`[C]\nK=1\nK=${'\\\n'.repeat(40_000)}`, 'f').sections[0]?.entries, []);
  start = performance.now();
  const err = (() => {
    try {
      parseUnitText(`[C]\nK=${'\\\n'.repeat(70_000)}`, 'f');
    } catch (e) {
      return e;
    }
    return null;
  })();
  t.ok(err instanceof PodsockError, 'too many continuation lines end in a clean error');
  t.ok(performance.now() - start < 20_000, 'under 20 s');
});
