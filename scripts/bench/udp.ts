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
 * A third variant, `relay` (`--variants direct,podsock,relay`), is the floor for any user-space proxy:
 * udp-relay.c, compiled here with `cc`, forwards by flow through the same network namespace with nothing
 * but epoll, recvmmsg and send, so that podsock's own cost can be told from what a proxy process costs
 * at all. A fourth, `nat`, is what forwarding in the kernel would give: an nftables DNAT rule (in a
 * table of its own, removed at the end) from a port on the host's bridge address to the container's
 * port, with no process in the path. Rounds alternate the variants (their order turns every round);
 * the summary gives medians and the ratio of each to direct, and checks the target (podsock's rr >=
 * 0.7x direct) at every client count. Not part of `npm test`.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/bench/udp.ts [options]
 *
 * Needs: rootful podman (podsock reaches the container through its network namespace and direct needs
 * its address), the fixture image (scripts/test-host.sh builds it), and a build (npm run build).
 */
import type { Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { childEnv, cpuSeconds, freePort, repoRoot, run, startDaemon, type Daemon } from './host.js';
import { cleanUpOnSignals } from './interrupt.js';
import { exitOnHelp, intOption, variantList } from './options.js';
import { formatRatio, median, ratio, table } from './stats.js';
import { requestResponse, udpSocket } from './udp-load.js';
import { buildRelay, startRelay } from './udp-relay.js';

const USAGE = `Usage: udp.ts [--rounds N] [--duration SECONDS] [--clients LIST] [--variants LIST] [--image IMAGE]
  --rounds    rounds over all variants (default 5)
  --duration  seconds per measure (default 3)
  --clients   request/response client counts, comma-separated (default 1,8,32)
  --variants  direct,podsock and optionally relay, nat (default direct,podsock)
  --image     the fixture image (default localhost/podsock-fixture:latest)`;

const BACKEND_PORT = 9000;
const RR_TARGET = 0.7;

const VARIANTS = ['direct', 'podsock', 'relay', 'nat'] as const;
type Variant = (typeof VARIANTS)[number];

interface Target {
  name: Variant;
  host: string;
  port: number;
}

function options(): { rounds: number; durationMs: number; clients: number[]; variants: Variant[]; image: string } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '3' },
      clients: { type: 'string', default: '1,8,32' },
      variants: { type: 'string', default: 'direct,podsock' },
      image: { type: 'string', default: 'localhost/podsock-fixture:latest' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  exitOnHelp(values.help, USAGE);
  const int = (name: string, v: string): number => intOption(name, v, 1, USAGE);
  const clients = values.clients.split(',').map((c) => int('clients', c.trim()));
  const variants = variantList(values.variants, VARIANTS, USAGE);
  if (!variants.includes('direct') || !variants.includes('podsock')) throw new Error(`Expected --variants to include direct and podsock (the ratios are to direct), got '${values.variants}'\n${USAGE}`);
  return { rounds: int('rounds', values.rounds), durationMs: int('duration', values.duration) * 1000, clients, variants, image: values.image };
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

/** The processes a request/response measure spends CPU in (proxy: podsock or the relay; null: direct). */
interface Processes {
  generator: number;
  echo: number;
  proxy: number | null;
}

interface RrSample {
  rate: number;
  /** CPU time per round trip in microseconds: the load generator, the echo app, the proxy (null: direct). */
  cpuUs: { generator: number; echo: number; proxy: number | null };
  /** The share of both cores left idle meanwhile, in percent. */
  idle: number;
  /** Datagrams sent again because no answer came within 200 ms (a datagram lost on the way). */
  resent: number;
}

/** One request/response measure, with what each process and the machine spent on it. */
async function rrSample(t: Target, clients: number, durationMs: number, procs: Processes): Promise<RrSample> {
  const c0 = cpuJiffies();
  const before = { generator: await cpuSeconds(procs.generator), echo: await cpuSeconds(procs.echo), proxy: procs.proxy === null ? 0 : await cpuSeconds(procs.proxy) };
  const r = await requestResponse(t, clients, durationMs);
  const c1 = cpuJiffies();
  const per = async (pid: number, s0: number): Promise<number> => ((await cpuSeconds(pid)) - s0) * 1e6 / Math.max(1, r.answered);
  const cpuUs = {
    generator: await per(procs.generator, before.generator),
    echo: await per(procs.echo, before.echo),
    proxy: procs.proxy === null ? null : await per(procs.proxy, before.proxy),
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

/** An nftables table that sends UDP to `gateway`:`port` on to `ip`:BACKEND_PORT (nft(8), "NAT STATEMENTS"),
 * loaded from a file written into `dir`. */
async function startNat(dir: string, table: string, gateway: string, port: number, ip: string): Promise<void> {
  const file = join(dir, 'nat.nft');
  writeFileSync(file, `table ip ${table} {\n  chain output { type nat hook output priority -100; ip daddr ${gateway} udp dport ${port} dnat to ${ip}:${BACKEND_PORT}; }\n}\n`, { flag: 'wx' });
  await run('nft', ['-f', file]);
}

async function main(): Promise<void> {
  const o = options();
  const env = childEnv();
  const bin = join(repoRoot, 'dist', 'bin', 'podsock.cjs');
  if (!existsSync(bin)) throw new Error(`'${bin}' is missing: build first (npm run build)`);
  const exec = ['/usr/bin/node', '/app/udp-echo.js'];
  const scratch = mkdtempSync(join(tmpdir(), 'podsock-bench-udp-'));

  // direct: the echo container's own address on podman's network.
  const directName = `podsock-bench-udp-direct-${process.pid}`;
  let daemon: Daemon | null = null;
  let relay: Daemon | null = null;
  const natTable = `podsock_bench_${process.pid}`;
  let nat = false;
  // Everything this run installs, removed once: at the end, or on SIGINT/SIGTERM (the DNAT rule most of
  // all, which would otherwise keep sending a port of the bridge's address to a container that is gone).
  let cleaned: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      await relay?.stop(1000);
      if (nat) await run('nft', ['delete', 'table', 'ip', natTable]).catch(() => undefined);
      await daemon?.stop();
      await run('podman', ['rm', '--force', '--time', '0', directName], { env }).catch(() => undefined);
      rmSync(scratch, { recursive: true, force: true });
    })());
  const checkInterrupted = cleanUpOnSignals(cleanup);
  try {
    await run('podman', ['run', '-d', '--rm', '--name', directName, '-v', '/usr:/usr:ro', '-e', `UDP_PORT=${BACKEND_PORT}`, o.image, ...exec], { env });
    const ip = (await run('podman', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', directName], { env })).trim();
    if (ip === '') throw new Error('the direct container has no address on a podman network (rootful podman is needed)');
    const direct: Target = { name: 'direct', host: ip, port: BACKEND_PORT };
    const directPid = await containerPid(directName, env);

    // podsock: proxy mode on a UDP socket, its own container of the same image.
    const port = await freePort();
    daemon = startDaemon(
      process.execPath,
      [bin, 'run', `bench-udp-${process.pid}`, '--mode', 'proxy', '--backend', String(BACKEND_PORT), '--ready', 'started', '--listen', `udp:127.0.0.1:${port}`, '--idle-timeout', 'infinity', '--log-level', 'warn', '--', '-v', '/usr:/usr:ro', '-e', `UDP_PORT=${BACKEND_PORT}`, o.image, ...exec],
      env,
    );
    const podsock: Target = { name: 'podsock', host: '127.0.0.1', port };
    const targets: Target[] = [direct, podsock];

    // relay: the floor of a user-space proxy, into the direct container's network namespace.
    if (o.variants.includes('relay')) {
      const relayPort = await freePort();
      relay = await startRelay(await buildRelay(scratch), relayPort, `/proc/${directPid}/ns/net`, '127.0.0.1', BACKEND_PORT);
      targets.push({ name: 'relay', host: '127.0.0.1', port: relayPort });
    }

    // nat: the kernel forwards, from the bridge's host address to the direct container.
    if (o.variants.includes('nat')) {
      const gateway = (await run('podman', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}', directName], { env })).trim();
      const natPort = await freePort();
      nat = true;
      await startNat(scratch, natTable, gateway, natPort, ip);
      targets.push({ name: 'nat', host: gateway, port: natPort });
    }

    const warm = await udpSocket();
    await ask(warm, direct, 'e-warm', 60_000);
    await ask(warm, podsock, 'e-warm', 120_000);
    for (const t of targets.slice(2)) await ask(warm, t, 'e-warm', 10_000);
    warm.close();
    const podsockContainers = (await run('podman', ['ps', '--format', '{{.Names}}', '--filter', `name=bench-udp-${process.pid}`], { env })).split('\n').filter((n) => n !== '');
    if (podsockContainers.length !== 1) throw new Error(`expected one container of podsock's service, found ${JSON.stringify(podsockContainers)}`);
    const procs: Record<Variant, Processes> = {
      direct: { generator: process.pid, echo: directPid, proxy: null },
      podsock: { generator: process.pid, echo: await containerPid(podsockContainers[0]!, env), proxy: daemon.pid },
      relay: { generator: process.pid, echo: directPid, proxy: relay?.pid ?? null },
      nat: { generator: process.pid, echo: directPid, proxy: null },
    };

    type All<T> = Partial<Record<Variant, T[]>>;
    const rr = new Map<number, All<RrSample>>(o.clients.map((c) => [c, Object.fromEntries(targets.map((t) => [t.name, []]))]));
    const oneway: All<number> = Object.fromEntries(targets.map((t) => [t.name, []]));
    for (let r = 0; r < o.rounds; r++) {
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      for (const t of order) {
        for (const c of o.clients) {
          checkInterrupted();
          rr.get(c)![t.name]!.push(await rrSample(t, c, o.durationMs, procs[t.name]));
        }
        checkInterrupted();
        oneway[t.name]!.push(await oneWay(t, o.durationMs));
      }
      console.error(`round ${r + 1}/${o.rounds} done`);
    }
    // CPU per round trip, medians in µs: generator + echo (+ the proxy). On two cores the most round
    // trips per second the three processes can make is 2 s / (their sum), however well they are scheduled.
    const proxies = targets.slice(1);
    const rows = [['measure', 'direct', ...proxies.flatMap((t) => [t.name, `${t.name}/direct`]), 'CPU/rt direct (gen+echo)', ...proxies.flatMap((t) => [`CPU/rt ${t.name} (gen+echo+proxy)`, `two-core ceiling ${t.name}`]), `idle ${targets.map((t) => t.name).join('/')}`, `resent ${targets.map((t) => t.name).join('/')}`]];
    const verdicts: string[] = [];
    for (const [c, all] of rr) {
      const d = median(all.direct!.map((x) => x.rate));
      const m = (xs: RrSample[], k: 'generator' | 'echo' | 'proxy'): number => median(xs.map((x) => x.cpuUs[k] ?? 0));
      const pct = (xs: RrSample[]): string => `${median(xs.map((x) => x.idle)).toFixed(0)}%`;
      const row = [`rr ${c} client${c === 1 ? '' : 's'} (round trips/s)`, d.toFixed(0)];
      const cpu: string[] = [];
      for (const t of proxies) {
        const xs = all[t.name]!;
        const p = median(xs.map((x) => x.rate));
        row.push(p.toFixed(0), formatRatio(ratio(p, d)));
        const [pg, pe, pp] = [m(xs, 'generator'), m(xs, 'echo'), m(xs, 'proxy')];
        const ceiling = 2e6 / (pg + pe + pp);
        cpu.push(`${pg.toFixed(1)}+${pe.toFixed(1)}+${pp.toFixed(1)} µs`, `${ceiling.toFixed(0)} (${formatRatio(ratio(ceiling, d))})`);
      }
      row.push(`${m(all.direct!, 'generator').toFixed(1)}+${m(all.direct!, 'echo').toFixed(1)} µs`, ...cpu);
      row.push(targets.map((t) => pct(all[t.name]!)).join('/'), targets.map((t) => String(median(all[t.name]!.map((x) => x.resent)))).join('/'));
      rows.push(row);
      const r = ratio(median(all.podsock!.map((x) => x.rate)), d);
      verdicts.push(`target: rr ${c} client${c === 1 ? '' : 's'} podsock/direct ${formatRatio(r)} >= ${RR_TARGET.toFixed(2)}x ${r !== null && r >= RR_TARGET ? 'ok' : 'MISSED'}`);
    }
    const d = median(oneway.direct!);
    const oneRow = ['oneway (MB/s received)', d.toFixed(1)];
    for (const t of proxies) {
      const p = median(oneway[t.name]!);
      oneRow.push(p.toFixed(1), formatRatio(ratio(p, d)));
    }
    rows.push([...oneRow, ...Array.from({ length: rows[0]!.length - oneRow.length }, () => '')]);
    console.log(table(rows));
    console.log(`samples: ${JSON.stringify({ rr: Object.fromEntries(rr), oneway })}`);
    for (const v of verdicts) console.log(v);
  } finally {
    await cleanup();
  }
}

await main();
