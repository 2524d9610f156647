/**
 * UDP proxy benchmark: podsock's proxy mode for datagram sockets (`--listen udp:…`, the native flow
 * engine) against going direct to the same container's own address (its IP on podman's network), in
 * one run. The backend is test/fixtures/udp-echo.js in the fixture image. Two measures:
 * - rr: request/response rate, for each count in `--clients`: that many sockets, each with exactly one
 *   64-byte datagram in flight (udp-load.ts), for `--duration` seconds; answered round trips per second,
 *   with the CPU time per round trip of each process (this load generator, the echo app, podsock), the
 *   share of the cores left idle, the rate that CPU time allows at most on two cores, and how many
 *   datagrams were sent again for want of an answer (a loss on the way, e.g. a full receive buffer);
 * - oneway: one-way throughput: one socket sends 1200-byte datagrams as fast as the kernel takes them
 *   for `--duration` seconds; the backend counts what arrived (MB/s received, so loss counts against).
 * Rounds alternate the two variants (their order flips every round); the summary gives medians and the
 * ratio podsock/direct, and checks the target (rr >= 0.7x direct) at every client count. Not part of
 * `npm test`.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/bench/udp.ts [options]
 *
 * Needs: rootful podman (podsock reaches the container through its network namespace and direct needs
 * its address), the fixture image (scripts/test-host.sh builds it), and a build (npm run build).
 */
import type { Socket } from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { childEnv, cpuSeconds, freePort, repoRoot, run, startDaemon, type Daemon } from './host.js';
import { exitOnHelp, intOption } from './options.js';
import { formatRatio, median, ratio, table } from './stats.js';
import { requestResponse, udpSocket } from './udp-load.js';

const USAGE = `Usage: udp.ts [--rounds N] [--duration SECONDS] [--clients LIST] [--image IMAGE]
  --rounds    rounds over both variants (default 5)
  --duration  seconds per measure (default 3)
  --clients   request/response client counts, comma-separated (default 1,8,32)
  --image     the fixture image (default localhost/podsock-fixture:latest)`;

const BACKEND_PORT = 9000;
const RR_TARGET = 0.7;

interface Target {
  name: 'direct' | 'podsock';
  host: string;
  port: number;
}

function options(): { rounds: number; durationMs: number; clients: number[]; image: string } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '3' },
      clients: { type: 'string', default: '1,8,32' },
      image: { type: 'string', default: 'localhost/podsock-fixture:latest' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  exitOnHelp(values.help, USAGE);
  const int = (name: string, v: string): number => intOption(name, v, 1, USAGE);
  const clients = values.clients.split(',').map((c) => int('clients', c.trim()));
  return { rounds: int('rounds', values.rounds), durationMs: int('duration', values.duration) * 1000, clients, image: values.image };
}

/** Send `msg` from `sock` until an answer comes (at most `deadlineMs`); the answer. */
async function ask(sock: Socket, t: Target, msg: string, deadlineMs: number): Promise<Buffer> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const answer = new Promise<Buffer>((resolve) => sock.once('message', resolve));
    sock.send(msg, t.port, t.host);
    const got = await Promise.race([answer, sleep(500).then(() => null)]);
    if (got !== null) return got;
    sock.removeAllListeners('message');
    if (Date.now() > end) throw new Error(`${t.name} (${t.host}:${t.port}) did not answer '${msg}' within ${deadlineMs} ms`);
  }
}

/** The idle and total jiffies of all CPUs (proc(5), the first line of /proc/stat). */
function cpuJiffies(): { idle: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
}

/** The processes a request/response measure spends CPU in (null: not part of this variant). */
interface Processes {
  generator: number;
  echo: number;
  podsock: number | null;
}

interface RrSample {
  rate: number;
  /** CPU time per round trip in microseconds: the load generator, the echo app, podsock (null: direct). */
  cpuUs: { generator: number; echo: number; podsock: number | null };
  /** The share of both cores left idle meanwhile, in percent. */
  idle: number;
  /** Datagrams sent again because no answer came within 200 ms (a datagram lost on the way). */
  resent: number;
}

/** One request/response measure, with what each process and the machine spent on it. */
async function rrSample(t: Target, clients: number, durationMs: number, procs: Processes): Promise<RrSample> {
  const c0 = cpuJiffies();
  const before = { generator: await cpuSeconds(procs.generator), echo: await cpuSeconds(procs.echo), podsock: procs.podsock === null ? 0 : await cpuSeconds(procs.podsock) };
  const r = await requestResponse(t, clients, durationMs);
  const c1 = cpuJiffies();
  const per = async (pid: number, s0: number): Promise<number> => ((await cpuSeconds(pid)) - s0) * 1e6 / Math.max(1, r.answered);
  const cpuUs = {
    generator: await per(procs.generator, before.generator),
    echo: await per(procs.echo, before.echo),
    podsock: procs.podsock === null ? null : await per(procs.podsock, before.podsock),
  };
  const idle = (100 * (c1.idle - c0.idle)) / Math.max(1, c1.total - c0.total);
  return { rate: r.rate, cpuUs, idle, resent: r.resent };
}

/** The host pid of a container's first process. */
async function containerPid(name: string, env: NodeJS.ProcessEnv): Promise<number> {
  const pid = Number((await run('podman', ['inspect', '--format', '{{.State.Pid}}', name], { env })).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`container '${name}' has no running process`);
  return pid;
}

/** MB/s the backend received from one sender of 1200-byte datagrams. */
async function oneWay(t: Target, durationMs: number): Promise<number> {
  const control = await udpSocket();
  await ask(control, t, '!', 10_000);
  const s = await udpSocket();
  const payload = Buffer.alloc(1200, 's');
  const start = performance.now();
  const end = start + durationMs;
  await new Promise<void>((resolve) => {
    const burst = (): void => {
      if (performance.now() >= end) return resolve();
      let inFlight = 64;
      for (let i = 0; i < 64; i++) s.send(payload, t.port, t.host, () => --inFlight === 0 && setImmediate(burst));
    };
    burst();
  });
  const seconds = (performance.now() - start) / 1000;
  await sleep(300); // let the last datagrams arrive
  const [, bytes] = (await ask(control, t, '?', 10_000)).toString().split(' ');
  s.close();
  control.close();
  return Number(bytes) / 1e6 / seconds;
}

async function main(): Promise<void> {
  const o = options();
  const env = childEnv();
  const bin = join(repoRoot, 'dist', 'bin', 'podsock.cjs');
  if (!existsSync(bin)) throw new Error(`'${bin}' is missing: build first (npm run build)`);
  const exec = ['/usr/bin/node', '/app/udp-echo.js'];

  // direct: the echo container's own address on podman's network.
  const directName = `podsock-bench-udp-direct-${process.pid}`;
  await run('podman', ['run', '-d', '--rm', '--name', directName, '-v', '/usr:/usr:ro', '-e', `UDP_PORT=${BACKEND_PORT}`, o.image, ...exec], { env });
  let daemon: Daemon | null = null;
  try {
    const ip = (await run('podman', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', directName], { env })).trim();
    if (ip === '') throw new Error('the direct container has no address on a podman network (rootful podman is needed)');
    const direct: Target = { name: 'direct', host: ip, port: BACKEND_PORT };

    // podsock: proxy mode on a UDP socket, its own container of the same image.
    const port = await freePort();
    daemon = startDaemon(
      process.execPath,
      [bin, 'run', `bench-udp-${process.pid}`, '--mode', 'proxy', '--backend', String(BACKEND_PORT), '--ready', 'started', '--listen', `udp:127.0.0.1:${port}`, '--idle-timeout', 'infinity', '--log-level', 'warn', '--', '-v', '/usr:/usr:ro', '-e', `UDP_PORT=${BACKEND_PORT}`, o.image, ...exec],
      env,
    );
    const podsock: Target = { name: 'podsock', host: '127.0.0.1', port };

    const warm = await udpSocket();
    await ask(warm, direct, 'e-warm', 60_000);
    await ask(warm, podsock, 'e-warm', 120_000);
    warm.close();
    const podsockContainers = (await run('podman', ['ps', '--format', '{{.Names}}', '--filter', `name=bench-udp-${process.pid}`], { env })).split('\n').filter((n) => n !== '');
    if (podsockContainers.length !== 1) throw new Error(`expected one container of podsock's service, found ${JSON.stringify(podsockContainers)}`);
    const procs: Record<Target['name'], Processes> = {
      direct: { generator: process.pid, echo: await containerPid(directName, env), podsock: null },
      podsock: { generator: process.pid, echo: await containerPid(podsockContainers[0]!, env), podsock: daemon.pid },
    };

    type Both<T> = Record<Target['name'], T[]>;
    const rr = new Map<number, Both<RrSample>>(o.clients.map((c) => [c, { direct: [], podsock: [] }]));
    const oneway: Both<number> = { direct: [], podsock: [] };
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? [direct, podsock] : [podsock, direct];
      for (const t of order) {
        for (const c of o.clients) rr.get(c)![t.name].push(await rrSample(t, c, o.durationMs, procs[t.name]));
        oneway[t.name].push(await oneWay(t, o.durationMs));
      }
      console.error(`round ${r + 1}/${o.rounds} done`);
    }
    // CPU per round trip, medians in µs: generator + echo (+ podsock). On two cores the most round
    // trips per second the three processes can make is 2 s / (their sum), however well they are scheduled.
    const rows = [['measure', 'direct', 'podsock', 'podsock/direct', 'CPU/rt direct (gen+echo)', 'CPU/rt podsock (gen+echo+podsock)', 'two-core ceiling', 'idle direct/podsock', 'resent direct/podsock']];
    const verdicts: string[] = [];
    for (const [c, both] of rr) {
      const d = median(both.direct.map((x) => x.rate));
      const p = median(both.podsock.map((x) => x.rate));
      const m = (xs: RrSample[], k: 'generator' | 'echo' | 'podsock'): number => median(xs.map((x) => x.cpuUs[k] ?? 0));
      const dg = m(both.direct, 'generator');
      const de = m(both.direct, 'echo');
      const pg = m(both.podsock, 'generator');
      const pe = m(both.podsock, 'echo');
      const pp = m(both.podsock, 'podsock');
      const ceiling = 2e6 / (pg + pe + pp);
      const pct = (xs: RrSample[]): string => `${median(xs.map((x) => x.idle)).toFixed(0)}%`;
      rows.push([
        `rr ${c} client${c === 1 ? '' : 's'} (round trips/s)`,
        d.toFixed(0),
        p.toFixed(0),
        formatRatio(ratio(p, d)),
        `${dg.toFixed(1)}+${de.toFixed(1)} µs`,
        `${pg.toFixed(1)}+${pe.toFixed(1)}+${pp.toFixed(1)} µs`,
        `${ceiling.toFixed(0)} (${formatRatio(ratio(ceiling, d))})`,
        `${pct(both.direct)}/${pct(both.podsock)}`,
        `${median(both.direct.map((x) => x.resent))}/${median(both.podsock.map((x) => x.resent))}`,
      ]);
      const r = ratio(p, d);
      verdicts.push(`target: rr ${c} client${c === 1 ? '' : 's'} podsock/direct ${formatRatio(r)} >= ${RR_TARGET.toFixed(2)}x ${r !== null && r >= RR_TARGET ? 'ok' : 'MISSED'}`);
    }
    const d = median(oneway.direct);
    const p = median(oneway.podsock);
    rows.push(['oneway (MB/s received)', d.toFixed(1), p.toFixed(1), formatRatio(ratio(p, d)), '', '', '', '', '']);
    console.log(table(rows));
    console.log(`samples: ${JSON.stringify({ rr: Object.fromEntries(rr), oneway })}`);
    for (const v of verdicts) console.log(v);
  } finally {
    await daemon?.stop();
    await run('podman', ['rm', '--force', '--time', '0', directName], { env }).catch(() => undefined);
  }
}

await main();
