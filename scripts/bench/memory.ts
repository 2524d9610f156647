/**
 * Memory benchmark: what a running socket-activated container service costs beside its application.
 * For each variant (memory-units.ts: podsock in handover and in proxy mode, a Quadlet-style
 * `podman run -d` service, systemd-socket-proxyd in front of such a service), under the test host's
 * systemd user manager with real podman, it sums the PSS and USS (smaps_rollup) of every process the
 * service keeps alive (memory-proc.ts keptProcesses(): the services' process trees and conmon, not
 * the container's processes), for one service alone and for N services of the variant at once, after
 * the one request that started it and again after a burst of keep-alive requests. Not part of `npm test`.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/bench/memory.ts [options]
 *
 * Needs: the test host (bash scripts/test-host.sh: a systemd user manager and podman), debootstrap for
 * the first image build, and a build of podsock (npm run build; the podsock units run
 * memory-units.ts podsockCommand()). Prints a Markdown table and the per-process means.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cleanUpOnSignals } from './interrupt.js';
import { exitOnHelp, intOption, variantList } from './options.js';
import { activatedNginxConf } from './cold-units.js';
import { BENCH_IMAGE, buildBenchImage } from './nginx-image.js';
import { podmanPath, systemctl, userManager, type UserManager } from './cold-systemd.js';
import { freePort, logTail, repoRoot, waitHttp } from './host.js';
import { keepAliveBurst, SMALL } from './memory-load.js';
import { sampleService } from './memory-sample.js';
import { formatBreakdown, formatTable, groupMean, type Row, type ServiceMemory } from './memory-summary.js';
import { podsockStateDir, removeLayouts, removePodsockState, startService, writeService } from './memory-systemd.js';
import { layout, MEMORY_VARIANTS, podsockCommand, type Layout, type MemoryUnitContext, type MemoryVariant } from './memory-units.js';

const USAGE = `Usage: memory.ts [--variants LIST] [--services N] [--requests N] [--connections N] [--settle-ms MS]
                 [--image IMAGE] [--json FILE] [--timeout SECONDS]
  --variants     comma-separated, from ${MEMORY_VARIANTS.join(', ')} (default all)
  --services     services of a variant running at once in the second scenario (default 6; 1 skips it)
  --requests     keep-alive requests per service in the load burst (default 2000)
  --connections  connections the burst spreads them over (default 20)
  --settle-ms    wait after the first request and after the burst before reading smaps (default 8000: podsock
                 gives back what start-up and serving needed after 5 s without connections, which
                 handover mode notices up to 1 s late)
  --image        image (default localhost/podsock-bench-nginx:latest, built when missing)
  --json         also write every process measured and the means to FILE
  --timeout      seconds a service may take to answer its first request (default 120)`;

interface Options {
  variants: MemoryVariant[];
  services: number;
  requests: number;
  connections: number;
  settleMs: number;
  image: string;
  json: string | null;
  timeoutMs: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: MEMORY_VARIANTS.join(',') },
      services: { type: 'string', default: '6' },
      requests: { type: 'string', default: '2000' },
      connections: { type: 'string', default: '20' },
      'settle-ms': { type: 'string', default: '8000' },
      image: { type: 'string', default: BENCH_IMAGE },
      json: { type: 'string' },
      timeout: { type: 'string', default: '120' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  exitOnHelp(values.help, USAGE);
  const int = (name: string, v: string, min: number): number => intOption(name, v, min, USAGE);
  const variants = variantList(values.variants, MEMORY_VARIANTS, USAGE);
  if (variants.length === 0) throw new Error(`Expected --variants to name at least one variant\n${USAGE}`);
  return {
    variants,
    services: int('services', values.services, 1),
    requests: int('requests', values.requests, 1),
    connections: int('connections', values.connections, 1),
    settleMs: int('settle-ms', values['settle-ms'], 0),
    image: values.image,
    json: values.json ?? null,
    timeoutMs: int('timeout', values.timeout, 1) * 1000,
  };
}

/** Everything one scenario of one variant measured. */
interface Measured {
  variant: MemoryVariant;
  scenario: string;
  services: ServiceMemory[];
}

interface Run {
  o: Options;
  m: UserManager;
  dir: string;
  podman: string;
  /** Every layout installed and not yet removed: the teardown's list. */
  live: Layout[];
  /** Every unit name used, for removePodsockState(). */
  names: string[];
  checkInterrupted(): void;
}

async function main(): Promise<void> {
  const o = options();
  if (o.variants.some((v) => v.startsWith('podsock-'))) {
    const cmd = podsockCommand('x', repoRoot, process.execPath)[0] as string;
    if (!existsSync(cmd)) throw new Error(`'${cmd}' is missing: build first (npm run build)`);
  }
  await buildBenchImage(o.image);
  const m = await userManager();
  const podman = await podmanPath(m);
  const dir = mkdtempSync(join(tmpdir(), 'psmem-'));
  const live: Layout[] = [];
  const names: string[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= removeLayouts(m, live.splice(0)).finally(() => {
      removePodsockState(podsockStateDir(m.xdgRuntimeDir, process.getuid?.() ?? 0), dir, names);
      rmSync(dir, { recursive: true, force: true });
    }));
  const r: Run = {
    o,
    m,
    dir,
    podman,
    live,
    names,
    checkInterrupted: cleanUpOnSignals(cleanup),
  };

  const loadBefore = loadavg();
  console.error(`load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}; podsock '${podsockCommand('NAME', repoRoot, process.execPath).join(' ')}'; working directory '${dir}'`);
  try {
    const measured: Measured[] = [];
    for (const variant of o.variants) {
      const counts = o.services === 1 ? [1] : [1, o.services];
      for (const count of counts) measured.push(...(await scenario(r, variant, count)));
    }
    const rows: Row[] = measured.map((x) => ({ variant: x.variant, scenario: x.scenario, mean: groupMean(x.services) }));
    const loadAfter = loadavg();
    console.log(
      [
        `PSS and USS of the processes each service keeps besides its container (conmon counted, the container's processes not); image ${o.image}`,
        `load: ${o.requests} keep-alive GET ${SMALL.path} over ${o.connections} connections per service; smaps read ${o.settleMs} ms after the first request and after the load`,
        // Shared file pages (node's 40 MiB binary above all) are split among every process that maps
        // them, this benchmark's own node and other users' processes included: USS does not move with them.
        'PSS shares file pages with every process mapping them (this benchmark\'s node too); USS is what stopping the service frees',
        '',
        formatTable(rows),
        '',
        'per process (mean over the services of the row):',
        formatBreakdown(rows),
        '',
        `load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`,
      ].join('\n'),
    );
    if (o.json !== null) {
      const data = { options: o, node: process.version, loadavg: { before: loadBefore, after: loadAfter }, results: measured.map((x, i) => ({ ...x, mean: rows[i]?.mean })) };
      writeFileSync(o.json, JSON.stringify(data, null, 2) + '\n');
    }
  } finally {
    await cleanup();
  }
}

/**
 * `count` services of `variant` at once: install and start them, measure after the first request,
 * load each, measure again, remove them. Returns the two measurements.
 */
async function scenario(r: Run, variant: MemoryVariant, count: number): Promise<Measured[]> {
  const { o, m } = r;
  const label = count === 1 ? '1 service' : `${count} services`;
  const layouts: Layout[] = [];
  const logs = new Map<Layout, string>();
  for (let i = 0; i < count; i++) {
    const unit = `psmem-${variant.replace('podsock-', '')}-${process.pid}-${count}-${i}`;
    const c: MemoryUnitContext = {
      unit,
      port: await freePort(),
      appPort: await freePort(),
      image: o.image,
      nginxConf: join(r.dir, `${unit}.nginx.conf`),
      configDir: join(r.dir, 'config'),
      log: join(r.dir, `${unit}.log`),
      containersConf: m.containersConf,
      podman: r.podman,
      podsock: podsockCommand(unit, repoRoot, process.execPath),
    };
    const l = layout(variant, c, m.xdgRuntimeDir);
    // Registered before anything is written, so that a failure half-way leaves nothing behind.
    r.live.push(l);
    r.names.push(unit);
    layouts.push(l);
    logs.set(l, c.log);
    if (variant === 'podsock-handover') writeFileSync(c.nginxConf, activatedNginxConf(c.port));
    writeService(m, variant, c);
  }
  try {
    await systemctl(m, 'daemon-reload');
    for (const l of layouts) {
      r.checkInterrupted();
      const t0 = Date.now();
      try {
        await startService(m, l);
        if (l.backendPort !== null) await waitHttp(`http://127.0.0.1:${l.backendPort}${SMALL.path}`, SMALL.bytes, o.timeoutMs);
        await waitHttp(`http://127.0.0.1:${l.port}${SMALL.path}`, SMALL.bytes, o.timeoutMs);
      } catch (err) {
        throw new Error(`${variant}: ${l.unit} did not answer: ${(err as Error).message}\n--- ${logs.get(l)}\n${logTail(logs.get(l) ?? '')}`);
      }
      console.error(`${variant} ${label}: ${l.unit} answered after ${Date.now() - t0} ms`);
    }
    const first = await sampleAll(r, layouts, `${variant} ${label} after 1 request`);
    for (const l of layouts) {
      r.checkInterrupted();
      const b = await keepAliveBurst(l.port, { requests: o.requests, connections: o.connections, timeoutMs: o.timeoutMs });
      const errors = b.failed === 0 ? '' : `, ${b.failed} failed (${b.failures.join('; ')})`;
      console.error(`${variant} ${label}: ${l.unit} served ${b.ok} requests in ${b.ms.toFixed(0)} ms${errors}`);
      if (b.ok === 0) throw new Error(`${variant}: ${l.unit} answered no request of the burst: ${b.failures.join('; ')}\n${logTail(logs.get(l) ?? '')}`);
    }
    const loaded = await sampleAll(r, layouts, `${variant} ${label} after load`);
    return [
      { variant, scenario: `${label}, 1 request`, services: first },
      { variant, scenario: `${label}, after load`, services: loaded },
    ];
  } finally {
    await removeLayouts(m, layouts);
    for (const l of layouts) {
      const i = r.live.indexOf(l);
      if (i >= 0) r.live.splice(i, 1);
    }
  }
}

/** Wait the settle time, then measure every service of the list; log what was found. */
async function sampleAll(r: Run, layouts: readonly Layout[], what: string): Promise<ServiceMemory[]> {
  await sleep(r.o.settleMs);
  r.checkInterrupted();
  const out: ServiceMemory[] = [];
  for (const l of layouts) {
    const s = await sampleService(r.m, l);
    for (const n of s.notes) console.error(n);
    out.push(s.memory);
  }
  const first = out[0];
  if (first !== undefined) console.error(`${what}: ${first.unit} keeps ${first.processes.map((p) => `${p.comm}(${p.pid}) ${(p.pss / 1024).toFixed(1)} MiB`).join(', ')}`);
  return out;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
