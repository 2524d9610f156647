/**
 * Cold-start benchmark (issue 7): how long the first request waits when its connection starts the
 * service. Under the test host's systemd user manager, four socket-activated services of the same
 * nginx image (cold-units.ts): podman's own socket activation with `--network none` and with the
 * default network, podsock in handover mode and podsock in proxy mode. Each sample connects to the
 * idle socket, sends `GET /1k HTTP/1.0` and times connect() to the first byte of the reply; then the
 * service is stopped and its container removed before the next sample. Rounds alternate the
 * variants (the order rotates every round) so that a shared machine's noise falls on all alike.
 *
 * Then podsock's own start (cold-own-start.ts): exec to spawning podman, against `node -e 0`.
 * Prints medians, min/max and the issue's ratios. Not part of `npm test`.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/bench/cold-start.ts [options]
 *
 * Needs: the test host (bash scripts/test-host.sh: a systemd user manager and podman), debootstrap
 * for the first image build, and a build of podsock in dist/ (npm run build).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cleanUpOnSignals } from './interrupt.js';
import { exitOnHelp, intOption, variantList } from './options.js';
import { freePort, logTail, repoRoot } from './host.js';
import { launcherFor, snapshotBuild } from './cold-build.js';
import { listeningSocket, nodeBareSample, podsockStartSample, stubSample, writeStub, type OwnStartContext } from './cold-own-start.js';
import { firstByte, type FirstByte } from './cold-probe.js';
import { formatSummary, rotate, summarise, type OwnStartSamples, type Phases } from './cold-summary.js';
import { coldService, installService, podmanPath, removeServices, serviceTimes, stopCold, userManager, type ColdService, type UserManager } from './cold-systemd.js';
import { BENCH_IMAGE, buildBenchImage } from './nginx-image.js';
import { activatedNginxConf, COLD_VARIANTS, podsockContainerFile, type ColdUnitContext, type ColdVariant } from './cold-units.js';

const USAGE = `Usage: cold-start.ts [--rounds N] [--warmup N] [--variants LIST] [--own-runs N] [--image IMAGE]
                     [--json FILE] [--timeout SECONDS] [--podsock FILE] [--launcher command|yes|no]
  --rounds     measured rounds over all variants (default 5)
  --warmup     rounds run first and not counted (default 1)
  --variants   comma-separated, from ${COLD_VARIANTS.join(', ')} (default all)
  --own-runs   samples each of podsock's own start, the podman stub and node -e 0 (default 10; 0 skips)
  --image      image (default localhost/podsock-bench-nginx:latest, built when missing)
  --json       also write every sample and the summary to FILE
  --timeout    seconds a sample may take before the run fails (default 120)
  --podsock    podsock's script to run with node (default: dist/bin/podsock.cjs)
  --launcher   command: the plain \`podsock run NAME\` line, the installed command dist/bin/podsock beside the
               script (default); yes: podsock-launch NODE SCRIPT, as generated units run it; no: node directly`;

interface Options {
  rounds: number;
  warmup: number;
  variants: ColdVariant[];
  ownRuns: number;
  image: string;
  json: string | null;
  timeoutMs: number;
  podsockMain: string;
  launcher: 'command' | 'yes' | 'no';
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      variants: { type: 'string', default: COLD_VARIANTS.join(',') },
      'own-runs': { type: 'string', default: '10' },
      image: { type: 'string', default: BENCH_IMAGE },
      json: { type: 'string' },
      timeout: { type: 'string', default: '120' },
      podsock: { type: 'string', default: shippedEntry() },
      launcher: { type: 'string', default: 'command' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  exitOnHelp(values.help, USAGE);
  const int = (name: string, v: string, min: number): number => intOption(name, v, min, USAGE);
  const variants = variantList(values.variants, COLD_VARIANTS, null);
  return {
    rounds: int('rounds', values.rounds, 1),
    warmup: int('warmup', values.warmup, 0),
    variants,
    ownRuns: int('own-runs', values['own-runs'], 0),
    image: values.image,
    json: values.json ?? null,
    timeoutMs: int('timeout', values.timeout, 1) * 1000,
    podsockMain: resolve(values.podsock),
    launcher:
      values.launcher === 'command' || values.launcher === 'yes' || values.launcher === 'no'
        ? values.launcher
        : usageError(`Expected --launcher command, yes or no, got '${values.launcher}'`),
  };
}

function usageError(message: string): never {
  throw new Error(`${message}\n${USAGE}`);
}

/** podsock's bundled script (dist/bin/podsock.cjs), which the installed command dist/bin/podsock runs with node. */
function shippedEntry(): string {
  return join(repoRoot, 'dist', 'bin', 'podsock.cjs');
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function main(): Promise<void> {
  const o = options();
  const needsPodsock = o.ownRuns > 0 || o.variants.some((v) => v.startsWith('podsock-'));
  if (needsPodsock && !existsSync(o.podsockMain)) throw new Error(`'${o.podsockMain}' is missing: build first (npm run build)`);
  await buildBenchImage(o.image);
  const m = await userManager();
  const podman = await podmanPath(m);

  const dir = mkdtempSync(join(tmpdir(), 'podsock-bench-cold-'));
  const services: ColdService[] = [];
  let build: { dir: string | null; entry: string } = { dir: null, entry: o.podsockMain };
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= removeServices(m, services).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      if (build.dir !== null) rmSync(build.dir, { recursive: true, force: true });
    }));
  const checkInterrupted = cleanUpOnSignals(cleanup);

  const loadBefore = loadavg();
  try {
    if (needsPodsock) build = snapshotBuild(o.podsockMain);
    const podsockMain = build.entry;
    const copy = build.dir === null ? '' : ` (a copy at '${podsockMain}')`;
    const launcher = o.launcher === 'yes' ? launcherFor(podsockMain) : null;
    if (o.launcher === 'yes' && launcher === null && needsPodsock) throw new Error(`podsock-launch is missing beside '${podsockMain}': build it (npx node-gyp rebuild) or pass --launcher no`);
    const command = o.launcher === 'command' ? join(dirname(podsockMain), 'podsock') : null;
    if (command !== null && !existsSync(command) && needsPodsock) throw new Error(`'${command}' is missing: build it (npm run build) or pass --launcher yes or no`);
    const how = command !== null ? `, run as the installed command '${command}'` : launcher === null ? ', run by node directly' : ', run through podsock-launch';
    console.error(`load average ${loadBefore}; podsock '${o.podsockMain}'${copy}${how}; working directory '${dir}'`);
    const byName = new Map<ColdVariant, ColdService>();
    for (const variant of o.variants) {
      const unit = `podsock-bench-cold-${variant}-${process.pid}`;
      const port = await freePort();
      const c: ColdUnitContext = {
        unit,
        port,
        image: o.image,
        nginxConf: join(dir, `${unit}.nginx.conf`),
        podsockConfig: join(dir, `${unit}.container`),
        log: join(dir, `${unit}.log`),
        containersConf: m.containersConf,
        podman,
        node: process.execPath,
        podsockMain,
        launcher,
        command,
      };
      writeFileSync(c.nginxConf, activatedNginxConf(port));
      const s = coldService(variant, c);
      services.push(s);
      byName.set(variant, s);
      await installService(m, variant, c);
    }

    const samples: Record<string, (number | null)[]> = Object.fromEntries(o.variants.map((v) => [v, [] as (number | null)[]]));
    const phases: Record<string, (Phases | null)[]> = Object.fromEntries(o.variants.map((v) => [v, [] as (Phases | null)[]]));
    const total = o.warmup + o.rounds;
    for (let round = 0; round < total; round++) {
      const warm = round < o.warmup;
      const label = warm ? `warm-up ${round + 1}/${o.warmup}` : `round ${round - o.warmup + 1}/${o.rounds}`;
      for (const variant of rotate(o.variants, round)) {
        checkInterrupted();
        const s = byName.get(variant) as ColdService;
        let fb: FirstByte;
        try {
          fb = await firstByte(s.port, o.timeoutMs);
        } catch (err) {
          throw new Error(`${variant}: ${(err as Error).message}\n--- ${s.log}\n${logTail(s.log)}`);
        }
        const p = await phasesOf(m, s, fb.connectNs);
        const stopStart = Date.now();
        await stopCold(m, s);
        const stopMs = Date.now() - stopStart;
        if (!warm) {
          samples[variant]?.push(fb.ms);
          phases[variant]?.push(p);
        }
        const detail = `forked +${p.exec?.toFixed(1) ?? '?'}, active +${p.active?.toFixed(1) ?? '?'}; stopped in ${stopMs} ms`;
        console.error(`${label} ${variant}: ${fb.ms.toFixed(1)} ms (${detail})`);
      }
    }

    checkInterrupted();
    // A failed own start still leaves the first-byte figures worth printing.
    let ownError: Error | null = null;
    const own =
      o.ownRuns > 0
        ? await measureOwnStart(o, m, dir, podsockMain, checkInterrupted).catch((err: Error) => {
            ownError = err;
            return null;
          })
        : null;
    const summary = summarise(samples, own, phases);
    const loadAfter = loadavg();
    console.log(formatSummary(summary));
    console.log(`load average before ${loadBefore}, after ${loadAfter}`);
    if (o.json !== null) {
      const data = { options: o, node: process.version, loadavg: { before: loadBefore, after: loadAfter }, samples, phases, ownStart: own, summary };
      writeFileSync(o.json, JSON.stringify(data, null, 2) + '\n');
    }
    if (ownError !== null) throw new Error(`own start: ${(ownError as Error).message}`);
  } finally {
    await cleanup();
  }
}

/**
 * The sample's phases from systemd's timestamps. With Ready=started nginx can answer before podsock
 * sends READY=1, so the service may still be activating: wait for it (backing off from 20 ms, for
 * at most 10 s) rather than read the previous activation's timestamp. Moments before connect() are
 * from an earlier activation and count as unknown.
 */
async function phasesOf(m: UserManager, s: ColdService, connectNs: bigint): Promise<Phases> {
  const after = (us: bigint | null): number | null => (us === null || us * 1000n < connectNs ? null : Number(us * 1000n - connectNs) / 1e6);
  const end = Date.now() + 10_000;
  let delay = 20;
  for (;;) {
    const times = await serviceTimes(m, s.unit);
    const p: Phases = { exec: after(times.execUs), active: after(times.activeUs) };
    if (p.active !== null || Date.now() > end) return p;
    await sleep(delay);
    delay = Math.min(500, delay * 2);
  }
}

/**
 * `ownRuns` samples each of podsock's own start, the podman stub alone and `node -e 0`, one of each
 * per iteration in a rotating order, after one unrecorded iteration.
 */
async function measureOwnStart(o: Options, m: UserManager, dir: string, podsockMain: string, checkInterrupted: () => void): Promise<OwnStartSamples> {
  const nginxConf = join(dir, 'own-start.nginx.conf');
  const config = join(dir, 'own-start.container');
  writeFileSync(nginxConf, activatedNginxConf(await freePort()));
  writeFileSync(config, podsockContainerFile('podsock-handover', { image: o.image, nginxConf }));
  const ctx: OwnStartContext = { node: process.execPath, podsockMain, config, name: `podsock-bench-own-${process.pid}`, dir: join(dir, 'own-start'), env: m.env };
  const stub = writeStub(ctx.dir);
  const sock = await listeningSocket();
  const out = { podsock: [] as number[], stub: [] as number[], node: [] as number[] };
  const measure: Record<keyof typeof out, () => Promise<number>> = {
    podsock: () => podsockStartSample(ctx, sock.fd, stub),
    stub: () => stubSample(ctx, sock.fd, stub),
    node: () => nodeBareSample(ctx, sock.fd),
  };
  try {
    for (let i = 0; i <= o.ownRuns; i++) {
      for (const which of rotate(['node', 'podsock', 'stub'] as const, i)) {
        checkInterrupted();
        const t = await measure[which]();
        if (i > 0) out[which].push(t);
        console.error(`own start ${i === 0 ? 'warm-up' : `${i}/${o.ownRuns}`} ${which === 'node' ? 'node -e 0' : which}: ${t.toFixed(1)} ms`);
      }
    }
  } finally {
    await sock.close();
  }
  return out;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
