/**
 * The memory benchmark's load: a burst of keep-alive HTTP/1.1 requests for the image's 1 KiB file
 * over a fixed number of connections, from a small Node client (no wrk needed), checking every reply.
 * A fixed count of requests rather than a duration, so every variant serves the same work.
 */
import http from 'node:http';

export const SMALL = { path: '/1k', bytes: 1024 } as const;

export interface BurstOptions {
  requests: number;
  connections: number;
  timeoutMs: number;
}

/** How the burst went; `failures` holds the first few distinct errors. */
export interface BurstResult {
  ok: number;
  failed: number;
  ms: number;
  failures: string[];
}

function get(agent: http.Agent, port: number, timeoutMs: number): Promise<void> {
  return new Promise((res, rej) => {
    const req = http.get({ host: '127.0.0.1', port, path: SMALL.path, agent, timeout: timeoutMs }, (resp) => {
      let bytes = 0;
      resp.on('data', (d: Buffer) => (bytes += d.length));
      resp.on('end', () => (resp.statusCode === 200 && bytes === SMALL.bytes ? res() : rej(new Error(`status ${resp.statusCode ?? '?'}, ${bytes} bytes`))));
      resp.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', rej);
  });
}

/**
 * `requests` GETs of /1k on 127.0.0.1:`port`, at most `connections` at a time, each connection kept
 * alive for the next request; all connections are closed before it resolves, so that the service
 * is measured with no client attached.
 */
export async function keepAliveBurst(port: number, o: BurstOptions): Promise<BurstResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections, maxFreeSockets: o.connections });
  const start = performance.now();
  const failures = new Set<string>();
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < o.requests) {
      next++;
      try {
        await get(agent, port, o.timeoutMs);
        ok++;
      } catch (err) {
        failed++;
        if (failures.size < 5) failures.add((err as Error).message);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.connections, o.requests) }, worker));
  } finally {
    agent.destroy();
  }
  return { ok, failed, ms: performance.now() - start, failures: [...failures] };
}
