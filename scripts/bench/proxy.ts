/**
 * Proxy benchmark: direct to an nginx container vs systemd-socket-proxyd vs podsock's proxy mode
 * (and optionally podsock's Proxy class alone and a naive Node pipe), for keep-alive 1 KiB requests,
 * a new connection per request and 256 MiB downloads. Rounds alternate the variants (their order
 * rotates every round) so that the noise of a shared machine falls on all of them alike; the summary
 * gives medians, ratios, the proxies' CPU per unit of work and their peak RSS, and checks the targets
 * of the issue. Not part of `npm test`.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/bench/proxy.ts [options]
 *
 * Needs: podman (CONTAINERS_CONF from .test-host/env.json is used when set), wrk, curl, systemd's
 * systemd-socket-activate and systemd-socket-proxyd, debootstrap for the first image build, and a
 * build of podsock (npm run build). Options: see USAGE.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, memoryKiB } from './host.js';
import { BENCH_IMAGE, buildBenchImage } from './nginx-image.js';
import { exitOnHelp } from './options.js';
import { BULK_BYTES, measure, SCENARIOS, unitOf, type LoadOptions, type Scenario } from './load.js';
import { formatRatio, formatValue, median, ratio, table, targetVerdict, type RatioTarget } from './stats.js';
import { startBackend, startVariant, VARIANTS, type Variant, type VariantName } from './variants.js';

const USAGE = `Usage: proxy.ts [--rounds N] [--duration SECONDS] [--connections N] [--threads N]
                [--bulk-repeats N] [--variants LIST] [--scenarios LIST] [--image IMAGE] [--json FILE]
                [--cpu-prof DIR]
  --rounds        rounds over all variants (default 5)
  --duration      seconds per wrk run (default 4)
  --connections   wrk connections (default 50)
  --threads       wrk threads (default 2)
  --bulk-repeats  256 MiB downloads per variant per round (default 2)
  --variants      comma-separated, from ${VARIANTS.join(', ')} (default direct,proxyd,podsock,naive)
  --scenarios     comma-separated, from ${SCENARIOS.join(', ')} (default all)
  --image         backend image (default localhost/podsock-bench-nginx:latest, built when missing)
  --json          also write every sample and the summary to FILE
  --cpu-prof      run the Node variants with --cpu-prof, writing their profiles to DIR`;

/** The issue's targets on 2-core machines. */
const TARGETS: RatioTarget[] = [
  { scenario: 'keepalive', subject: 'podsock', base: 'proxyd', min: 1.7 },
  { scenario: 'newconn', subject: 'podsock', base: 'proxyd', min: 1.0 },
  { scenario: 'bulk', subject: 'podsock', base: 'proxyd', min: 0.8 },
];
const RSS_LIMIT_MIB = 80;

interface Point {
  value: number;
  errors: number;
  /** The proxy process's CPU per request (µs) or per GiB (s); null for direct. */
  cpu: number | null;
}

function options(): { load: LoadOptions; rounds: number; bulkRepeats: number; variants: VariantName[]; scenarios: Scenario[]; image: string; json: string | null; nodeArgs: string[] } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '4' },
      connections: { type: 'string', default: '50' },
      threads: { type: 'string', default: '2' },
      'bulk-repeats': { type: 'string', default: '2' },
      variants: { type: 'string', default: 'direct,proxyd,podsock,naive' },
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      image: { type: 'string', default: BENCH_IMAGE },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  exitOnHelp(values.help, USAGE);
  const int = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`Expected --${name} to be a positive integer, got '${v}'\n${USAGE}`);
    return n;
  };
  const list = <T extends string>(name: string, v: string, allowed: readonly T[]): T[] => {
    const items = v.split(',').filter((x) => x !== '');
    for (const x of items) if (!allowed.includes(x as T)) throw new Error(`Unknown --${name} entry '${x}': expected one of ${allowed.join(', ')}`);
    return items as T[];
  };
  return {
    load: { connections: int('connections', values.connections), threads: int('threads', values.threads), durationS: int('duration', values.duration) },
    rounds: int('rounds', values.rounds),
    bulkRepeats: int('bulk-repeats', values['bulk-repeats']),
    variants: list('variants', values.variants, VARIANTS),
    scenarios: list('scenarios', values.scenarios, SCENARIOS),
    image: values.image,
    json: values.json ?? null,
    nodeArgs: values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(values['cpu-prof'])],
  };
}

async function main(): Promise<void> {
  const o = options();
  await buildBenchImage(o.image);

  const running = new Map<VariantName, Variant>();
  const cleanup = async (): Promise<void> => {
    const all = [...running.values()].reverse();
    running.clear();
    await Promise.all(all.map((v) => v.stop()));
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const backend = await startBackend(o.image);
    running.set('direct', backend);
    for (const name of o.variants) {
      if (name === 'direct') continue;
      running.set(name, await startVariant(name, backend.port, o.image, o.nodeArgs));
      console.error(`${name} is up on 127.0.0.1:${running.get(name)?.port}`);
    }
    const variants = o.variants.map((n) => running.get(n) as Variant);
    // On a shared machine the figures only mean something next to the load they were taken under.
    const loadBefore = loadavg();
    const points = await measureAll(variants, o);
    const load = { before: loadBefore, after: loadavg() };
    const rss = new Map<VariantName, number | null>();
    for (const v of variants) if (v.pid !== null) rss.set(v.name, memoryKiB(v.pid).peak);
    const summary = report(points, rss, load, o);
    if (o.json !== null) writeFileSync(o.json, JSON.stringify({ options: o, points: mapToObject(points), summary }, null, 2) + '\n');
  } finally {
    await cleanup();
  }
}

type Points = Map<Scenario, Map<VariantName, Point[]>>;

async function measureAll(variants: Variant[], o: ReturnType<typeof options>): Promise<Points> {
  const points: Points = new Map(o.scenarios.map((s) => [s, new Map(variants.map((v) => [v.name, [] as Point[]]))]));
  for (let round = 0; round < o.rounds; round++) {
    // Rotate the order each round: A B C, B C A, C A B... so no variant always runs first or last.
    const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant);
    for (const scenario of o.scenarios) {
      for (const v of order) {
        const repeats = scenario === 'bulk' ? o.bulkRepeats : 1;
        for (let i = 0; i < repeats; i++) {
          const cpuBefore = v.pid === null ? 0 : await cpuSeconds(v.pid);
          const s = await measure(scenario, v.port, o.load);
          const cpuUsed = v.pid === null ? null : (await cpuSeconds(v.pid)) - cpuBefore;
          const cpu = cpuUsed === null || s.work === 0 ? null : scenario === 'bulk' ? cpuUsed / (s.work / 2 ** 30) : (cpuUsed / s.work) * 1e6;
          points.get(scenario)?.get(v.name)?.push({ value: s.value, errors: s.errors, cpu });
          console.error(`round ${round + 1}/${o.rounds} ${scenario} ${v.name}: ${formatValue(s.value)} ${unitOf(scenario)}${s.errors > 0 ? ` (${s.errors} errors)` : ''}`);
        }
      }
    }
  }
  return points;
}

function report(points: Points, rss: Map<VariantName, number | null>, load: { before: number[]; after: number[] }, o: ReturnType<typeof options>): Record<string, unknown> {
  const medians: Record<string, Record<string, number>> = {};
  const lines: string[] = [];
  lines.push(
    `${o.rounds} rounds; wrk -c ${o.load.connections} -t ${o.load.threads} -d ${o.load.durationS}s; ${o.bulkRepeats} x ${BULK_BYTES / 2 ** 20} MiB per variant per round; backend ${o.image}`,
    `load average (1, 5, 15 min): ${load.before.map((x) => x.toFixed(2)).join(' ')} before, ${load.after.map((x) => x.toFixed(2)).join(' ')} after`,
  );
  for (const [scenario, byVariant] of points) {
    const cpuUnit = scenario === 'bulk' ? 'CPU s/GiB' : 'CPU us/req';
    const rows = [['', `median ${unitOf(scenario)}`, 'min', 'max', 'n', 'errors', `proxy ${cpuUnit}`]];
    medians[scenario] = {};
    for (const [name, ps] of byVariant) {
      if (ps.length === 0) continue;
      const vals = ps.map((p) => p.value);
      const cpus = ps.flatMap((p) => (p.cpu === null ? [] : [p.cpu]));
      const m = median(vals);
      (medians[scenario] as Record<string, number>)[name] = m;
      rows.push([name, formatValue(m), formatValue(Math.min(...vals)), formatValue(Math.max(...vals)), String(ps.length), String(ps.reduce((n, p) => n + p.errors, 0)), cpus.length ? formatValue(median(cpus)) : '-']);
    }
    const m = medians[scenario] as Record<string, number>;
    const pairs: Array<[string, string]> = [
      ['podsock', 'proxyd'],
      ['podsock', 'direct'],
      ['proxyd', 'direct'],
      ['podsock-poll', 'proxyd'],
      ['podsock', 'podsock-poll'],
      ['podsock-class', 'proxyd'],
      ['podsock-class', 'direct'],
      ['naive', 'direct'],
    ];
    const ratios = pairs.filter(([a, b]) => m[a] !== undefined && m[b] !== undefined).map(([a, b]) => `${a}/${b} ${formatRatio(ratio(m[a], m[b]))}`);
    lines.push('', `${scenario}:`, table(rows), `ratios: ${ratios.join(', ')}`);
  }
  const rssMiB: Record<string, number | null> = {};
  for (const [name, kib] of rss) rssMiB[name] = kib === null ? null : kib / 1024;
  lines.push('', `peak RSS (VmHWM): ${Object.entries(rssMiB).map(([n, v]) => `${n} ${v === null ? 'n/a' : `${v.toFixed(1)} MiB`}`).join(', ')}`);
  const verdicts: string[] = [];
  for (const t of TARGETS) {
    const m = medians[t.scenario];
    if (m?.[t.subject] !== undefined && m[t.base] !== undefined) verdicts.push(targetVerdict(t, ratio(m[t.subject], m[t.base])));
  }
  const podsockRss = rssMiB.podsock;
  if (podsockRss != null) verdicts.push(`podsock peak RSS ${podsockRss.toFixed(1)} MiB < ${RSS_LIMIT_MIB} MiB ${podsockRss < RSS_LIMIT_MIB ? 'ok' : 'MISSED'}`);
  if (verdicts.length) lines.push('targets:', ...verdicts.map((v) => `  ${v}`));
  console.log(lines.join('\n'));
  return { medians, rssMiB, verdicts, load };
}

function mapToObject(points: Points): Record<string, Record<string, Point[]>> {
  return Object.fromEntries([...points].map(([s, byV]) => [s, Object.fromEntries(byV)]));
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exitCode = 1;
});
