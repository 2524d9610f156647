/**
 * Crash loops under the real systemd user manager. A connection waiting in the socket re-activates
 * the service as soon as it fails, so a service that fails at once would be started again and again
 * until systemd's start limit (5 starts in 10 s by default) fails the service and, with it, the
 * socket, which then stops listening for good (systemd.socket(5)). podsock backs off
 * instead (src/start-failures.ts: 0, 1 s, 2 s, 4 s … 30 s before exiting, said in STATUS=), and forgets
 * the streak once a container served.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { containerExists, hostEnv, readLog, systemctl, uniqueName, unitProps, waitFor, type HostEnv } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';

const h = hostEnv(t);

/** What a watcher saw of a service and its socket. */
interface Seen {
  /** ExecMainStartTimestampMonotonic of every start, in µs, in order. */
  starts: number[];
  /** Every distinct StatusText, in order of first sight. */
  statuses: string[];
  /** Every distinct "ActiveState/Result" of the socket. */
  socketStates: string[];
}

/**
 * Samples the service and its socket about every 100 ms until `until` resolves. Polling is the only
 * way to see a unit's state from outside; the short failed states between restarts may be missed,
 * which is why starts are counted by their timestamps rather than by states.
 */
async function watch(h: HostEnv, name: string, until: Promise<unknown>): Promise<Seen> {
  const seen: Seen = { starts: [], statuses: [], socketStates: [] };
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    const s = await serviceState(h, name);
    const k = await unitProps(h, `${name}.socket`, ['ActiveState', 'Result']);
    const start = Number(s.ExecMainStartTimestampMonotonic);
    if (start > 0 && !seen.starts.includes(start)) seen.starts.push(start);
    if (s.StatusText !== undefined && s.StatusText !== '' && !seen.statuses.includes(s.StatusText)) seen.statuses.push(s.StatusText);
    const ks = `${k.ActiveState}/${k.Result}`;
    if (!seen.socketStates.includes(ks)) seen.socketStates.push(ks);
    await new Promise((r) => setTimeout(r, 100));
  }
  return seen;
}

/** Opens a connection, sends one HTTP/1.0 request and resolves with the whole reply (or '' on a reset). */
function pendingRequest(port: number, path: string, t: Test): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    t.teardown(() => s.destroy());
    const chunks: Buffer[] = [];
    s.on('connect', () => s.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', () => undefined);
  });
}

/** podsock's log as (pid, error message or warning text) per failure-related line, in order. */
function failureLines(log: string): Array<{ pid: number; error?: string; warn?: string }> {
  const out: Array<{ pid: number; error?: string; warn?: string }> = [];
  for (const line of readLog(log).split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { pid: number; level: number; msg?: string; err?: { message?: string } };
    if (j.level === 50 && j.err?.message !== undefined) out.push({ pid: j.pid, error: j.err.message });
    if (j.level === 40 && j.msg !== undefined && / times in a row; /.test(j.msg)) out.push({ pid: j.pid, warn: j.msg });
  }
  return out;
}

const waiting = (n: number, s: number): RegExp => new RegExp(`^Failed ${n} times in a row; waiting ${s} s before exiting to avoid a restart storm\\. Last: `);

if (h !== null) {
  await t.test('a container that exits at once, re-activated by a waiting connection: backs off, the socket survives, the streak resets', async (t) => {
    const name = uniqueName('loop');
    const containerFile = (crash: boolean): string =>
      [
        '[Container]',
        `Image=${h.fixtureImage}`,
        'Network=none',
        'Pull=never',
        `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
        `Environment=FIXTURE_NAME=${name}${crash ? ' FIXTURE_EXIT_BEFORE_READY=3' : ''}`,
        '[Podsock]',
        'Ready=notify',
        'IdleTimeout=2s',
        '',
      ].join('\n');
    const svc = await installPodsockService(t, h, name, { containerFile: containerFile(true) });
    const file = join(svc.configDir, `${name}.container`);

    // One request waits in the socket through the whole loop.
    const reply = pendingRequest(svc.port, '/healed', t);
    const fourth = waitFor('the 4th failure', async () => waiting(4, 4).test((await serviceState(h, name)).StatusText ?? ''), 120_000, 200);
    const seen = await watch(h, name, fourth);
    await fourth;
    t.comment(`starts at ${seen.starts.map((s) => ((s - (seen.starts[0] ?? 0)) / 1e6).toFixed(1)).join(', ')} s`);
    t.comment(`statuses: ${JSON.stringify(seen.statuses)}`);
    t.same(seen.socketStates, ['active/success'], 'the socket never failed');
    // The log has every failure (sampling the unit misses the short ones): one error per start, then the wait.
    const why = `Container '${svc.containerName}' exited with code 3 before it was ready`;
    t.same(failureLines(svc.log).slice(0, 7).map((l) => l.error ?? l.warn), [
      why,
      why,
      `Failed 2 times in a row; waiting 1 s before exiting to avoid a restart storm. Last: ${why}`,
      why,
      `Failed 3 times in a row; waiting 2 s before exiting to avoid a restart storm. Last: ${why}`,
      why,
      `Failed 4 times in a row; waiting 4 s before exiting to avoid a restart storm. Last: ${why}`,
    ], 'each start fails once, saying why; from the 2nd on it waits 1 s, 2 s, 4 s and says so');
    t.ok(seen.statuses.some((s) => waiting(3, 2).test(s)), "the unit's status said that the 3rd failure waits 2 s");
    t.match(seen.statuses.at(-1), /Last: Container 'podsock-[^']+' exited with code 3 before it was ready$/, 'and names the last failure');
    t.ok(seen.starts.length >= 3 && seen.starts.length <= 4, `3 or 4 starts seen before the 4th failure's wait (${seen.starts.length})`);
    const gaps = seen.starts.slice(1).map((s, i) => (s - (seen.starts[i] ?? 0)) / 1000);
    // A gap is the backoff of the previous failure plus a whole start; it can never be shorter than the backoff.
    const minGap = [0, 1000, 2000];
    gaps.forEach((g, i) => t.ok(g >= (minGap[i] ?? 0), `gap ${i + 1}: ${g.toFixed(0)} ms >= ${minGap[i] ?? 0} ms`));
    const tenSeconds = seen.starts.filter((s) => s - (seen.starts[0] ?? 0) < 10_000_000).length;
    t.ok(tenSeconds < 5, `fewer than 5 starts in the first 10 s (systemd's default start limit): ${tenSeconds}`);

    // Heal the configuration: the waiting request is served by the next start.
    writeFileSync(file, containerFile(false));
    const body = await Promise.race([reply, new Promise<string>((r) => setTimeout(() => r('(no reply in 90 s)'), 90_000).unref())]);
    t.match(body, new RegExp(`^HTTP/1\\.[01] 200[^]*hello from ${name} path=/healed`), 'the request that waited through the loop is answered');
    const idle = await waitState(h, name, ['inactive'], 60_000);
    t.equal(idle.Result, 'success', 'then an idle exit, status 0');
    t.notOk(await containerExists(h, svc.containerName));

    // Break it again: the streak starts over at 1 (no wait), then 1 s.
    const before = failureLines(svc.log).length;
    writeFileSync(file, containerFile(true));
    const again = pendingRequest(svc.port, '/again', t);
    const second = waitFor('the 2nd failure of the new streak', async () => failureLines(svc.log).length >= before + 3, 60_000, 200);
    const seen2 = await watch(h, name, second);
    await second;
    t.same(failureLines(svc.log).slice(before, before + 3).map((l) => l.error ?? l.warn), [
      why,
      why,
      `Failed 2 times in a row; waiting 1 s before exiting to avoid a restart storm. Last: ${why}`,
    ], 'the new streak starts at 1: the count was reset by the container that served');
    t.same(seen2.socketStates, ['active/success']);
    await systemctl(h, 'stop', `${name}.socket`, `${name}.service`);
    t.equal(await again, '', 'the waiting connection is closed without a reply when the socket stops');
  });

  await t.test('podman missing, re-activated by a waiting connection: backs off too, the socket survives', async (t) => {
    const name = uniqueName('loopnp');
    const svc = await installPodsockService(t, h, name, { service: ['Environment=PODSOCK_PODMAN=/nonexistent/podman'] });
    void pendingRequest(svc.port, '/x', t);
    const third = waitFor('the 3rd failure', async () => waiting(3, 2).test((await serviceState(h, name)).StatusText ?? ''), 120_000, 200);
    const seen = await watch(h, name, third);
    await third;
    t.comment(`statuses: ${JSON.stringify(seen.statuses)}`);
    t.same(seen.socketStates, ['active/success'], 'the socket never failed');
    const why = "podman not found: PODSOCK_PODMAN='/nonexistent/podman' is not an executable file";
    t.same(failureLines(svc.log).slice(0, 5).map((l) => l.error ?? l.warn), [
      why,
      why,
      `Failed 2 times in a row; waiting 1 s before exiting to avoid a restart storm. Last: ${why}`,
      why,
      `Failed 3 times in a row; waiting 2 s before exiting to avoid a restart storm. Last: ${why}`,
    ], 'each start fails once, saying why, and waits 1 s, then 2 s');
    await systemctl(h, 'stop', `${name}.socket`, `${name}.service`);
  });
}
