/**
 * UDP proxy benchmark: podsock's proxy mode for datagram sockets (`--listen udp:…`, the native flow
 * engine) against going direct to the same container's own address (its IP on podman's network), in
 * one run. The backend is test/fixtures/udp-echo.js in the fixture image. Two measures:
 * - rr: request/response rate: `--clients` sockets, each with one 64-byte datagram in flight, for
 *   `--duration` seconds; completed round trips per second;
 * - oneway: one-way throughput: one socket sends 1200-byte datagrams as fast as the kernel takes them
 *   for `--duration` seconds; the backend counts what arrived (MB/s received, so loss counts against).
 * Rounds alternate the two variants (their order flips every round); the summary gives medians and the
 * ratio podsock/direct, and checks the target (rr >= 0.7x direct). Not part of `npm test`.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import @tapjs/typescript/import scripts/bench/udp.ts [options]
 *
 * Needs: rootful podman (podsock reaches the container through its network namespace and direct needs
 * its address), the fixture image (scripts/test-host.sh builds it), and a build (npm run build).
 */
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { childEnv, freePort, repoRoot, run, startDaemon, type Daemon } from './host.js';
import { intOption } from './options.js';
import { formatRatio, median, ratio, table } from './stats.js';

const USAGE = `Usage: udp.ts [--rounds N] [--duration SECONDS] [--clients N] [--image IMAGE]
  --rounds    rounds over both variants (default 5)
  --duration  seconds per measure (default 3)
  --clients   concurrent request/response clients (default 32)
  --image     the fixture image (default localhost/podsock-fixture:latest)`;

const BACKEND_PORT = 9000;
const RR_TARGET = 0.7;

interface Target {
  name: 'direct' | 'podsock';
  host: string;
  port: number;
}

function options(): { rounds: number; durationMs: number; clients: number; image: string } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '3' },
      clients: { type: 'string', default: '32' },
      image: { type: 'string', default: 'localhost/podsock-fixture:latest' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string): number => intOption(name, v, 1, USAGE);
  return { rounds: int('rounds', values.rounds), durationMs: int('duration', values.duration) * 1000, clients: int('clients', values.clients), image: values.image };
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

async function udpSocket(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
  // Any address: the direct target is on podman's bridge, which a socket bound to 127.0.0.1 cannot reach.
  await new Promise<void>((resolve) => s.bind(0, resolve));
  return s;
}

/** Round trips per second with `clients` sockets, one datagram in flight each. */
async function requestResponse(t: Target, clients: number, durationMs: number): Promise<number> {
  const socks = await Promise.all(Array.from({ length: clients }, udpSocket));
  const payload = Buffer.alloc(64, 'e');
  let done = 0;
  let running = true;
  for (const s of socks) {
    s.on('message', () => {
      done++;
      if (running) s.send(payload, t.port, t.host);
    });
  }
  // A lost datagram would stall its client: resend every 200 ms to keep every client busy.
  const kick = setInterval(() => socks.forEach((s) => s.send(payload, t.port, t.host)), 200);
  const start = performance.now();
  socks.forEach((s) => s.send(payload, t.port, t.host));
  await sleep(durationMs);
  running = false;
  const rate = done / ((performance.now() - start) / 1000);
  clearInterval(kick);
  socks.forEach((s) => s.close());
  return rate;
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

    const samples: Record<string, Record<Target['name'], number[]>> = { rr: { direct: [], podsock: [] }, oneway: { direct: [], podsock: [] } };
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? [direct, podsock] : [podsock, direct];
      for (const t of order) {
        samples.rr![t.name].push(await requestResponse(t, o.clients, o.durationMs));
        samples.oneway![t.name].push(await oneWay(t, o.durationMs));
      }
      console.error(`round ${r + 1}/${o.rounds} done`);
    }
    const rows = [['measure', 'direct', 'podsock', 'podsock/direct']];
    const rr = ratio(median(samples.rr!.podsock), median(samples.rr!.direct));
    for (const [m, unit] of [['rr', 'round trips/s'], ['oneway', 'MB/s received']] as const) {
      const d = median(samples[m]!.direct);
      const p = median(samples[m]!.podsock);
      rows.push([`${m} (${unit})`, d.toFixed(m === 'rr' ? 0 : 1), p.toFixed(m === 'rr' ? 0 : 1), formatRatio(ratio(p, d))]);
    }
    console.log(table(rows));
    console.log(`samples: ${JSON.stringify(samples)}`);
    console.log(`target: rr podsock/direct ${formatRatio(rr)} >= ${RR_TARGET.toFixed(2)}x ${rr !== null && rr >= RR_TARGET ? 'ok' : 'MISSED'}`);
  } finally {
    await daemon?.stop();
    await run('podman', ['rm', '--force', '--time', '0', directName], { env }).catch(() => undefined);
  }
}

await main();
