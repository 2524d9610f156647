/**
 * Standalone `podsock run --listen` through many activation/idle cycles, in both modes: podsock's
 * open fd count, heap and resident memory after the last cycle equal those after the first few (no
 * leak per cycle), and after SIGTERM nothing is left: no container, no cidfile, no notify directory.
 *
 * Size: PODSOCK_LONG=1 runs 100 cycles per mode (run it with `--timeout=0`: .taprc's file limit is
 * 900 s); the default is 30.
 *
 * Cycles are driven by podsock's own log (JSON on stderr): one request, then the next 'Waiting for
 * the first connection' line, which podsock writes after the idle stop has reaped the container.
 * Samples are taken at that same point of every cycle, while podsock waits with nothing running.
 *
 * What is compared: the open fd count (exact, give or take a transient one); the V8 heap left after
 * a full collection, which node runs before writing a heap snapshot on SIGUSR2
 * (--heapsnapshot-signal) and reports with --trace-gc: retained JavaScript objects show here, to
 * the megabyte; and RSS, with a wide bound. RSS of an idle podsock swings with the young generation
 * and malloc arenas: over a 100-cycle handover run it went 91, 95, 77, 85, 96, 100, 107, 107, 107,
 * 107 MiB (every 10 cycles) while V8 ran no full collection at all (its heap stays near 10 MiB),
 * so RSS only catches gross native leaks.
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { execa } from 'execa';
import { childEnv, containerExists, freePort, hostEnv, httpGet, logFile, podman, uniqueName, waitFor } from './harness.js';
import { podsockBin } from './podsock-units.js';

const h = hostEnv(t);

const LONG = process.env.PODSOCK_LONG === '1';
const CYCLES = LONG ? 100 : 30;
/** The baseline is taken after this many cycles: caches, the JIT and pino's buffers have settled. */
const WARMUP = 4;
/** fds that may come and go with timing: a /proc/net read of the handover wake poll, a podman pipe. */
const FD_SLACK = 2;
/** RSS growth allowed between the baseline and the end (see the header). */
const RSS_SLACK_KIB = 32 * 1024;
/** Growth of the heap after a full GC allowed between the baseline and the end: JIT code, caches. */
const HEAP_SLACK_MB = 2;
const CYCLE_TIMEOUT_MS = 60_000;

interface Sample {
  fds: number;
  rssKiB: number;
}

/** True while one of the process's fds is open on a file whose name ends in `.heapsnapshot`. */
function writingSnapshot(pid: number): boolean {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith('.heapsnapshot')) return true;
    } catch {
      // Closed in the meantime.
    }
  }
  return false;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** The smallest fd count of a few samples 20 ms apart (transient fds excluded), and the RSS. */
async function sample(pid: number): Promise<Sample> {
  let fds = Infinity;
  for (let i = 0; i < 5; i++) {
    fds = Math.min(fds, fdCount(pid));
    await new Promise((r) => setTimeout(r, 20));
  }
  return { fds, rssKiB: rssKiB(pid) };
}

interface LogRecord {
  msg?: unknown;
  argv?: unknown;
}

if (h !== null) {
  for (const mode of ['handover', 'proxy'] as const) {
    await t.test(`standalone ${mode}: ${CYCLES} cycles, fds, heap and RSS flat, nothing left after SIGTERM`, async (t) => {
      const name = uniqueName(`leak-${mode}`);
      const containerName = `podsock-${name}`;
      const port = await freePort();
      // --trace-gc: V8 reports each full (mark-compact) collection with the heap left after it;
      // SIGUSR2 makes node collect fully and write a heap snapshot (into cwd).
      const cwd = join(h.stateDir, 'heap', name);
      mkdirSync(cwd, { recursive: true });
      t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
      const args = ['--trace-gc', '--heapsnapshot-signal=SIGUSR2', podsockBin, 'run', name, '--listen', `127.0.0.1:${port}`, '--idle-timeout', '1s', '--mode', mode, '--log-level', 'debug'];
      if (mode === 'proxy') args.push('--backend', '8080');
      args.push('--', ...h.podmanRunArgs, ...(mode === 'handover' ? ['--network', 'none'] : []), '-e', `FIXTURE_NAME=${name}`, h.fixtureImage);
      const child = execa(process.execPath, args, { cwd, env: childEnv(h), extendEnv: false, reject: false, stdin: 'ignore', buffer: false });
      t.teardown(async () => {
        child.kill('SIGKILL');
        await child;
        await podman(h, 'rm', '--force', '--ignore', containerName);
      });
      const pid = child.pid;
      if (pid === undefined) throw new Error('podsock did not start');
      // Everything podsock and the container print also goes to a log file, for a failure's post-mortem.
      const log = createWriteStream(logFile(h, name), { flags: 'a' });
      t.teardown(() => new Promise<void>((resolve) => log.end(resolve)));
      child.stderr?.pipe(log, { end: false });
      child.stdout?.pipe(log, { end: false });
      // Heap after each full GC the heap profiler asked for.
      const snapshotGcs: number[] = [];
      let restOut = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        const lines = (restOut + chunk.toString('utf8')).split('\n');
        restOut = lines.pop() ?? '';
        for (const line of lines) {
          const m = /: Mark-Compact (?:\(reduce\) )?[\d.]+ \([\d.]+\) -> ([\d.]+) \(.*heap profiler/.exec(line);
          if (m !== null) snapshotGcs.push(Number(m[1]));
        }
      });

      // podsock's log: count the lines the cycles wait for, keep the podman argv lines and errors.
      let waiting = 0;
      let waiters: Array<() => void> = [];
      const argvLines: string[] = [];
      const problems: string[] = [];
      let rest = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.startsWith('{')) continue;
          let rec: LogRecord & { level?: unknown };
          try {
            rec = JSON.parse(line) as LogRecord & { level?: unknown };
          } catch {
            continue;
          }
          if (rec.msg === 'Waiting for the first connection') waiting++;
          if (typeof rec.argv === 'string') argvLines.push(rec.argv);
          if (typeof rec.level === 'number' && rec.level >= 40 && problems.length < 10) problems.push(String(rec.msg));
        }
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      });
      const untilWaiting = (n: number): Promise<void> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`podsock did not wait for connection #${n} within ${CYCLE_TIMEOUT_MS} ms`)), CYCLE_TIMEOUT_MS);
          const check = (): void => {
            if (waiting >= n) {
              clearTimeout(timer);
              resolve();
            } else waiters.push(check);
          };
          check();
        });

      /** Full GC through a heap snapshot; returns the heap left after it (MB) once the snapshot is written. */
      const heapAfterGc = async (): Promise<number> => {
        const before = snapshotGcs.length;
        const files = (): string[] => readdirSync(cwd).filter((f) => f.endsWith('.heapsnapshot'));
        child.kill('SIGUSR2');
        await waitFor('the heap snapshot', async () => snapshotGcs.length > before && files().length > 0 && !writingSnapshot(pid), 60_000, 50);
        for (const f of files()) rmSync(join(cwd, f));
        return snapshotGcs[snapshotGcs.length - 1] ?? NaN;
      };

      await untilWaiting(1);
      let answered = 0;
      let baseline: Sample | null = null;
      let baseHeap = NaN;
      const begin = Date.now();
      const trail: Sample[] = [];
      for (let c = 0; c < CYCLES; c++) {
        const r = await httpGet(`http://127.0.0.1:${port}/c${c}`, 30_000);
        if (r.status === 200 && r.body === `hello from ${name} path=/c${c} pid=1\n`) answered++;
        // The next wait begins only after the idle stop has reaped the container.
        await untilWaiting(c + 2);
        if (c + 1 === WARMUP) {
          baseHeap = await heapAfterGc();
          baseline = await sample(pid);
        }
        if ((c + 1) % 10 === 0 || c + 1 === CYCLES) trail.push(await sample(pid));
      }
      const endHeap = await heapAfterGc();
      const end = await sample(pid);
      const perCycle = Math.round((Date.now() - begin) / CYCLES);
      t.equal(answered, CYCLES, `${CYCLES} cycles, every request answered`);
      t.equal(waiting, CYCLES + 1, 'exactly one idle stop per cycle');
      t.equal(argvLines.length, CYCLES, 'exactly one container start per cycle');
      t.same(problems, [], 'no warning or error in the log');
      if (baseline === null) throw new Error('no baseline sample');
      t.ok(Math.abs(end.fds - baseline.fds) <= FD_SLACK, `open fds: ${baseline.fds} after cycle ${WARMUP}, ${end.fds} after cycle ${CYCLES}`);
      const growth = end.rssKiB - baseline.rssKiB;
      t.ok(growth < RSS_SLACK_KIB, `RSS: ${baseline.rssKiB} KiB after cycle ${WARMUP}, ${end.rssKiB} KiB after cycle ${CYCLES} (growth ${growth} KiB < ${RSS_SLACK_KIB} KiB)`);
      t.ok(endHeap - baseHeap < HEAP_SLACK_MB, `heap after a full GC: ${baseHeap} MB after cycle ${WARMUP}, ${endHeap} MB after cycle ${CYCLES}`);
      t.comment(`${mode}: ${perCycle} ms per cycle; every 10 cycles fds=${trail.map((s) => s.fds).join(',')} rssKiB=${trail.map((s) => s.rssKiB).join(',')}`);
      t.notOk(await containerExists(h, containerName), 'no container while idle');

      child.kill('SIGTERM');
      const r = await child;
      t.equal(r.exitCode, 0, 'SIGTERM while idle: exit 0');

      // What podsock itself put on the host, as its podman argv lines name it.
      const cidfiles = new Set(argvLines.map((a) => /--cidfile=(\S+)/.exec(a)?.[1]).filter((x): x is string => x !== undefined));
      const notifyDirs = new Set(argvLines.map((a) => /--volume (\S+):\/run\/podsock-notify/.exec(a)?.[1]).filter((x): x is string => x !== undefined));
      t.equal(cidfiles.size, 1, `one cidfile path for the service (${[...cidfiles].join(' ')})`);
      t.equal(notifyDirs.size, CYCLES, 'a fresh notify directory per activation');
      t.same([...cidfiles].filter((f) => existsSync(f)), [], 'no cidfile left');
      t.same([...notifyDirs].filter((d) => existsSync(d)), [], 'no notify directory left');
      const ps = await podman(h, 'ps', '--all', '--filter', `name=^${containerName}$`, '--format', '{{.Names}}');
      t.equal(ps.exitCode, 0, `podman ps -a works (${ps.stderr.trim()})`);
      t.equal(ps.stdout.trim(), '', 'podman ps -a: no container');
      await waitFor('the port to be closed', async () => {
        try {
          await httpGet(`http://127.0.0.1:${port}/after`, 2000);
          return false;
        } catch {
          return true;
        }
      }, 10_000);
      t.pass('nothing listens after SIGTERM');
    });
  }
}
