/**
 * Load across activation/idle cycles under the real systemd user manager, in both modes: every cycle
 * activates the service, sends a few requests, then fires a burst of concurrent requests timed to
 * land as the idle stop begins (IdleTimeout=2s). Requests that reach the running container are served
 * by it; requests that arrive once it stops accepting wait in systemd's socket and are served by the
 * next activation. Every request must get a complete 200 reply: refused, reset, timed-out and
 * incomplete exchanges are counted separately and must all be zero.
 *
 * Handover mode runs a small server (GRACEFUL_SERVER below) instead of the fixture: there the
 * container owns accept(), so between podsock's idle decision and the stop signal reaching the app
 * (a `podman stop`, hundreds of ms) the app keeps accepting, and only the app can finish what it has
 * accepted. The fixture exits at once on SIGTERM and destroys open connections; with it, 2 of the
 * 240 burst requests of a 15-cycle run were reset. A server that closes its listener and finishes its
 * requests on SIGTERM (what handover mode asks of an app) loses none: the rest wait in systemd's
 * socket. Proxy mode needs nothing of the app, since podsock itself stops accepting and drains first.
 *
 * Size: PODSOCK_LONG=1 runs 1000 requests over 50 cycles per mode (about 6 min per mode; run it
 * with `--timeout=0` since .taprc's file limit is 900 s); the default is 300 requests over 15 cycles.
 *
 * Aiming the burst at the moment accepting stops: in proxy mode that is podsock's idle decision (its
 * 'Idle for ...' log line; the idle timer arms the moment the last connection closes). In handover
 * mode it is the app's SIGTERM (the server logs it as a JSON line into the same file), which comes
 * after the decision (the kernel is sampled every min(1 s, IdleTimeout/4) = 500 ms) plus the time
 * `podman stop` takes. Each cycle's burst aims at the median delay from the last lead reply to that
 * line seen in earlier cycles, jittered by +-150 ms; the distances are reported, and the test asserts
 * that bursts did land on both sides (some served by the running container, some by the next one).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { containerExists, hostEnv, readLog, uniqueName, type HostEnv } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

const LONG = process.env.PODSOCK_LONG === '1';
const CYCLES = LONG ? 50 : 15;
const PER_CYCLE = 20; // 1000/50 and 300/15
const LEAD = 4; // the first activates the service, three more follow one by one
const BURST = PER_CYCLE - LEAD;
const IDLE_MS = 2000;
/** A reply must come within this, including a wait for the next activation. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Replies are tiny; anything larger is a fault. */
const MAX_REPLY = 64 * 1024;

type Outcome = 'ok' | 'refused' | 'reset' | 'timeout' | 'incomplete' | 'other';

interface Exchange {
  outcome: Outcome;
  /** Milliseconds from connect() to the end of the reply (or the failure). */
  ms: number;
  detail: string;
}

/**
 * One HTTP/1.0 GET on its own connection, classified. Never rejects. 'ok' means a 200 status line
 * and the fixture's body naming this exact path, followed by the server's close.
 */
function exchange(port: number, name: string, path: string): Promise<Exchange> {
  const begin = Date.now();
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (outcome: Outcome, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ outcome, ms: Date.now() - begin, detail });
    };
    const timer = setTimeout(() => finish('timeout', `${path}: no complete reply in ${REQUEST_TIMEOUT_MS} ms`), REQUEST_TIMEOUT_MS);
    s.on('connect', () => s.write(`GET ${path} HTTP/1.0\r\nHost: load\r\n\r\n`));
    s.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPLY) finish('other', `${path}: reply over ${MAX_REPLY} bytes`);
      else chunks.push(c);
    });
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const ok = /^HTTP\/1\.[01] 200 /.test(text) && text.endsWith(`\r\n\r\nhello from ${name} path=${path} pid=1\n`);
      finish(ok ? 'ok' : 'incomplete', `${path}: ${JSON.stringify(text.slice(0, 120))}`);
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      const outcome: Outcome =
        err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : 'other';
      finish(outcome, `${path}: ${err.code ?? err.message}`);
    });
  });
}

/** Times (ms since the epoch) of podsock's log lines whose message starts with `prefix`. */
function logTimes(file: string, prefix: string): number[] {
  const out: number[] = [];
  for (const line of readLog(file).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { time?: unknown; msg?: unknown };
      if (typeof rec.msg === 'string' && rec.msg.startsWith(prefix) && typeof rec.time === 'number') out.push(rec.time);
    } catch {
      // A container line that happens to start with '{': not ours.
    }
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * An HTTP/1.0 server on the handed-over fd 3 that replies like the fixture and, on SIGTERM, stops
 * accepting, finishes the connections it has, then exits (bounded by 10 s). CommonJS: it runs as a
 * plain .js file under the host's node inside the fixture image.
 */
const GRACEFUL_SERVER = `'use strict';
const net = require('node:net');
const name = process.env.FIXTURE_NAME;
const server = net.createServer((s) => {
  let buf = '';
  s.setEncoding('latin1');
  s.on('error', () => s.destroy());
  s.on('data', (c) => {
    buf += c;
    if (buf.length > 8192) return s.destroy();
    if (!buf.includes('\\r\\n\\r\\n')) return;
    const m = /^GET (\\S+) HTTP\\/1\\.[01]\\r\\n/.exec(buf);
    const body = 'hello from ' + name + ' path=' + (m ? m[1] : '?') + ' pid=' + process.pid + '\\n';
    s.end('HTTP/1.0 200 OK\\r\\ncontent-type: text/plain\\r\\ncontent-length: ' + body.length + '\\r\\n\\r\\n' + body);
  });
});
// Keep systemd's backlog (somaxconn) rather than node's default of 511.
server.listen({ fd: 3, backlog: 4096 });
process.on('SIGTERM', () => {
  // A log line in podsock's format, so the test can time bursts against the end of accepting.
  process.stdout.write(JSON.stringify({ time: Date.now(), msg: 'graceful-server: SIGTERM, closing the listener' }) + '\\n');
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 10000).unref();
});
`;

function containerFile(h: HostEnv, name: string, mode: 'handover' | 'proxy'): string {
  // The fixture binds 8080; podsock publishes it on loopback.
  if (mode === 'proxy') return proxyContainerFile(h, name, { podsock: [`IdleTimeout=${IDLE_MS / 1000}s`] });
  const dir = join(h.stateDir, 'load');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'graceful-server.js');
  writeFileSync(script, GRACEFUL_SERVER);
  return [
    '[Container]',
    `Image=${h.fixtureImage}`,
    'Pull=never',
    `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
    `Volume=${script}:/graceful-server.js:ro`,
    'Network=none',
    `Environment=FIXTURE_NAME=${name}`,
    'Exec=/usr/bin/node /graceful-server.js',
    '[Podsock]',
    'Mode=handover',
    `IdleTimeout=${IDLE_MS / 1000}s`,
    '',
  ].join('\n');
}

if (h !== null) {
  for (const mode of ['handover', 'proxy'] as const) {
    await t.test(`${mode}: ${CYCLES * PER_CYCLE} requests over ${CYCLES} activation/idle cycles, bursts at the idle stop`, async (t) => {
      const name = uniqueName(`load-${mode}`);
      const svc = await installPodsockService(t, h, name, { containerFile: containerFile(h, name, mode) });
      const counts: Record<Outcome, number> = { ok: 0, refused: 0, reset: 0, timeout: 0, incomplete: 0, other: 0 };
      const failures: string[] = [];
      const record = (x: Exchange): Exchange => {
        counts[x.outcome] += 1;
        if (x.outcome !== 'ok' && failures.length < 10) failures.push(`${x.outcome} ${x.detail}`);
        return x;
      };
      // The log line that marks the end of accepting (see the header).
      const stopLine = mode === 'proxy' ? 'Idle for' : 'graceful-server: SIGTERM';
      // Delay from the last lead reply to that line, per cycle.
      const stopDelays: number[] = [];
      // Burst start minus that line, per cycle: negative = the burst came while still accepting.
      const burstVsStop: number[] = [];
      let servedByRunning = 0;
      let servedByNext = 0;
      let badResults = 0;
      let sent = 0;

      for (let c = 0; c < CYCLES; c++) {
        const stopLinesBefore = logTimes(svc.log, stopLine).length;
        // Lead: activate, then a few requests one by one on the running container.
        let lastReply = 0;
        for (let i = 0; i < LEAD; i++) {
          record(await exchange(svc.port, name, `/c${c}-l${i}`));
          sent++;
          lastReply = Date.now();
        }
        const expected = stopDelays.length > 0 ? median(stopDelays) : mode === 'proxy' ? IDLE_MS : IDLE_MS + 600;
        // Jitter spreads the bursts over the last 150 ms of accepting and the first 150 ms after it.
        const aim = expected + Math.round((Math.random() * 2 - 1) * 150);
        await sleep(Math.max(0, lastReply + aim - Date.now()));
        const burstAt = Date.now();
        const burst = await Promise.all(Array.from({ length: BURST }, (_, i) => exchange(svc.port, name, `/c${c}-b${i}`).then(record)));
        sent += BURST;
        for (const x of burst) {
          // A reply from the running container takes milliseconds; one that waited for the next
          // activation takes a container stop plus a start (hundreds of ms at the least).
          if (x.outcome === 'ok' && x.ms < 150) servedByRunning++;
          else if (x.outcome === 'ok') servedByNext++;
        }
        const s = await waitState(h, name, ['inactive', 'failed'], 60_000);
        if (s.Result !== 'success') {
          badResults++;
          t.fail(`cycle ${c}: the service ended with result '${s.Result}'`);
        }
        const stopAt = logTimes(svc.log, stopLine).slice(stopLinesBefore)[0];
        if (stopAt === undefined) {
          t.fail(`cycle ${c}: no '${stopLine}' line in ${svc.log}`);
          continue;
        }
        // A burst that came early enough restarts the idle time: then this stop is not the one the
        // lead phase led to, and says nothing about the aim.
        if (stopAt <= burstAt + IDLE_MS) {
          stopDelays.push(stopAt - lastReply);
          burstVsStop.push(burstAt - stopAt);
        }
      }

      const total = CYCLES * PER_CYCLE;
      t.equal(sent, total, `${total} requests sent`);
      t.equal(counts.ok, total, `every request answered with a full 200 reply (failures: ${failures.join('; ') || 'none'})`);
      t.equal(counts.refused, 0, 'no connection refused');
      t.equal(counts.reset, 0, 'no connection reset');
      t.equal(counts.timeout, 0, 'no request timed out');
      t.equal(counts.incomplete, 0, 'no incomplete reply');
      t.equal(counts.other, 0, 'no other error');
      t.equal(badResults, 0, 'every idle stop was a clean stop');
      const activations = logTimes(svc.log, 'Starting podman').length;
      t.ok(activations >= CYCLES, `at least one activation per cycle (${activations} for ${CYCLES} cycles)`);
      // The bursts must really have straddled the end of accepting.
      const near = burstVsStop.filter((d) => d >= -150 && d <= 150).length;
      const sorted = [...burstVsStop].sort((a, b) => a - b);
      t.ok(near >= 1, `bursts at the stop: ${near} of ${burstVsStop.length} within 150 ms of '${stopLine}' (burst minus that line, ms: ${sorted.join(' ')})`);
      t.ok(servedByRunning > 0 && servedByNext > 0, `burst requests served by the running container: ${servedByRunning}, by the next activation: ${servedByNext}`);
      t.comment(
        `${mode}: ${counts.ok}/${total} answered over ${CYCLES} cycles, ${activations} activations; ` +
          `'${stopLine}' after the last lead reply: median ${median(stopDelays)} ms; ` +
          `${CYCLES - burstVsStop.length} bursts came early enough to restart the idle time`,
      );
      const end = await serviceState(h, name);
      t.equal(end.ActiveState, 'inactive', 'idle at the end');
      t.notOk(await containerExists(h, svc.containerName), 'no container left');
    });
  }
}
