/**
 * A container that floods its notify socket (FIXTURE_NOTIFY_FLOOD, thousands of datagrams a second)
 * must not slow podsock's proxy measurably nor grow podsock's memory without bound: the notify server
 * drops what exceeds its rate (200 a second) before parsing, and nothing per datagram is kept.
 *
 * Two proxy-mode services run side by side under the real systemd user manager: 'quiet' and 'flood'.
 * Request latency (sequential HTTP GETs, each on a fresh connection through podsock to the container)
 * is measured on 'quiet' before anything floods, then on both, interleaved, while 'flood' floods; and
 * podsock's RSS and CPU time are read from /proc over 10 s of flood. The bounds are generous (shared,
 * noisy 2-core machines); the numbers themselves are printed as comments.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { hostEnv, httpGet, readLog, uniqueName, waitFor } from './harness.js';
import { installPodsockService, serviceState, waitState, type PodsockService } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

/** Datagrams per second; PODSOCK_FLOOD_RATE=N tries another size. */
const RATE = Number(process.env.PODSOCK_FLOOD_RATE ?? 5000);
const REQUESTS = 200;
const MIB = 1024 * 1024;

/** Milliseconds of `n` sequential GETs, each on its own connection; every reply must be the fixture's. */
async function latencies(svc: PodsockService, n: number, tag: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const begin = process.hrtime.bigint();
    const r = await httpGet(svc.url(`/${tag}-${i}`), 10_000);
    out.push(Number(process.hrtime.bigint() - begin) / 1e6);
    if (r.status !== 200 || !r.body.includes(`path=/${tag}-${i} `)) throw new Error(`bad reply to /${tag}-${i}: ${r.status} ${r.body}`);
  }
  return out;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

const fmt = (xs: number[]): string => `median ${quantile(xs, 0.5).toFixed(2)} ms, p90 ${quantile(xs, 0.9).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`;

/** VmRSS of a process in bytes. */
function rss(pid: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** utime + stime of a process in clock ticks (proc(5): fields 14 and 15). */
function cpuTicks(pid: string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** The fixture's per-second "flood: sent=N refused=M" lines, as numbers. */
function floodReports(log: string): Array<{ sent: number; refused: number }> {
  return [...readLog(log).matchAll(/^flood: sent=(\d+) refused=(\d+)$/gm)].map((m) => ({ sent: Number(m[1]), refused: Number(m[2]) }));
}

if (h !== null) {
  await t.test(`a notify flood of ${RATE}/s: proxy latency and podsock's memory stay put`, async (t) => {
    const quietName = uniqueName('fl-quiet');
    const floodName = uniqueName('fl-flood');
    const quiet = await installPodsockService(t, h, quietName, { containerFile: proxyContainerFile(h, quietName, { podsock: ['IdleTimeout=infinity'] }) });
    const flood = await installPodsockService(t, h, floodName, { containerFile: proxyContainerFile(h, floodName, { container: [`Environment=FIXTURE_NOTIFY_FLOOD=${RATE}`], podsock: ['IdleTimeout=infinity'] }) });

    // Baseline: only 'quiet' runs.
    await httpGet(quiet.url('/warm'), 60_000);
    await latencies(quiet, 20, 'warm');
    const base = await latencies(quiet, REQUESTS, 'base');
    t.comment(`no flood anywhere, 'quiet': ${fmt(base)}`);

    // Start 'flood' and let it flood for a while.
    await httpGet(flood.url('/warm'), 60_000);
    const s = await waitState(h, floodName, ['active'], 30_000);
    const pid = s.MainPID ?? '';
    t.match(pid, /^[1-9]\d*$/);
    await waitFor('two seconds of flood', async () => floodReports(flood.log).length >= 2, 30_000, 200);

    // Interleaved blocks, so that both services see the same machine load.
    const duringQuiet: number[] = [];
    const duringFlood: number[] = [];
    const rss0 = rss(pid);
    const ticks0 = cpuTicks(pid);
    const t0 = Date.now();
    const samples: number[] = [rss0];
    for (let block = 0; block < 10; block++) {
      duringFlood.push(...(await latencies(flood, REQUESTS / 10, `f${block}`)));
      duringQuiet.push(...(await latencies(quiet, REQUESTS / 10, `q${block}`)));
      samples.push(rss(pid));
    }
    // Then 10 s more of flood with nothing else going on, sampling memory each second.
    const settleFrom = samples.length - 1;
    const settle = Date.now();
    while (Date.now() - settle < 10_000) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(rss(pid));
    }
    const cpuPercent = ((cpuTicks(pid) - ticks0) / 100 / ((Date.now() - t0) / 1000)) * 100;
    const reports = floodReports(flood.log);
    // The last (up to) ten one-second intervals of the fixture's reports.
    const i0 = Math.max(0, reports.length - 11);
    const last = reports.at(-1) ?? { sent: 0, refused: 0 };
    const earlier = reports[i0] ?? { sent: 0, refused: 0 };
    const span = Math.max(1, reports.length - 1 - i0);
    const sentPerSecond = (last.sent - earlier.sent) / span;
    const refusedPerSecond = (last.refused - earlier.refused) / span;

    t.comment(`during the flood, 'flood': ${fmt(duringFlood)}`);
    t.comment(`during the flood, 'quiet': ${fmt(duringQuiet)}`);
    t.comment(`flood delivered ${sentPerSecond.toFixed(0)} datagrams/s to podsock (${refusedPerSecond.toFixed(0)}/s refused after 0.1 s), ${last.sent} in all`);
    t.comment(`podsock (flooded) RSS: ${samples.map((b) => (b / MIB).toFixed(1)).join(', ')} MiB; CPU ${cpuPercent.toFixed(0)}% of one core`);
    const state = await serviceState(h, floodName);
    t.comment(`status: ${state.StatusText}`);

    t.ok(sentPerSecond >= 1000, `the flood reached podsock at ${sentPerSecond.toFixed(0)}/s (at least 1000/s)`);
    t.equal(state.ActiveState, 'active', 'the flooded service is still serving');
    const bound = 3 * quantile(base, 0.5) + 5;
    t.ok(quantile(duringFlood, 0.5) < bound, `median latency through the flooded podsock ${quantile(duringFlood, 0.5).toFixed(2)} ms < 3 x ${quantile(base, 0.5).toFixed(2)} ms + 5 ms`);
    const max = Math.max(...samples);
    t.ok(max < 150 * MIB, `RSS stays under 150 MiB (max ${(max / MIB).toFixed(1)} MiB)`);
    const late = samples.at(-1) ?? 0;
    // The requests above allocate too; over the last 10 s only the flood runs.
    const quietFrom = samples[settleFrom] ?? 0;
    t.ok(late - quietFrom < 8 * MIB, `RSS does not keep growing over 10 s of flood alone (${(quietFrom / MIB).toFixed(1)} -> ${(late / MIB).toFixed(1)} MiB)`);
    t.ok(late - rss0 < 32 * MIB, `nor over the whole run (${(rss0 / MIB).toFixed(1)} -> ${(late / MIB).toFixed(1)} MiB)`);
  });
}
