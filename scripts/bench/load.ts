/**
 * The three loads of the benchmark, each returning one sample:
 * - keepalive: wrk, `connections` keep-alive connections fetching the 1 KiB file, requests/s;
 * - newconn: the same with `Connection: close`, so every request is a new TCP connection, requests/s;
 * - bulk: one curl download of the 256 MiB file, MiB/s.
 */
import { run } from './host.js';
import { parseWrk } from './stats.js';

export const SCENARIOS = ['keepalive', 'newconn', 'bulk'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const BULK_BYTES = 256 * 1024 * 1024;

export interface LoadOptions {
  connections: number;
  threads: number;
  durationS: number;
}

/** One measurement: `value` in the scenario's unit, `work` = requests or bytes done, `errors` seen by the client. */
export interface Sample {
  value: number;
  work: number;
  errors: number;
}

export function unitOf(s: Scenario): string {
  return s === 'bulk' ? 'MiB/s' : 'req/s';
}

export async function measure(scenario: Scenario, port: number, o: LoadOptions): Promise<Sample> {
  if (scenario === 'bulk') return curlBulk(port);
  const args = ['-c', String(o.connections), '-t', String(o.threads), '-d', `${o.durationS}s`];
  if (scenario === 'newconn') args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/1k`);
  const r = parseWrk(await run('wrk', args, { timeoutMs: (o.durationS + 60) * 1000 }));
  return { value: r.requestsPerSec, work: r.requests, errors: r.socketErrors + r.non2xx };
}

async function curlBulk(port: number): Promise<Sample> {
  const out = await run('curl', ['-sS', '--max-time', '120', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{speed_download}', `http://127.0.0.1:${port}/256m`], {
    timeoutMs: 130_000,
  });
  const [code, size, speed] = out.trim().split(' ').map(Number);
  const complete = code === 200 && size === BULK_BYTES;
  return { value: (speed ?? 0) / (1024 * 1024), work: size ?? 0, errors: complete ? 0 : 1 };
}
