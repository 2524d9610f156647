/**
 * `podsock status` under the real systemd user manager with real podman: a service activated by a
 * connection shows in `podsock status NAME --json` as running, with its cold-start time and the one
 * connection; after its idle timeout it shows as not running, the last cold start kept. The status
 * is read by the built bin, as a user would, from what the service's podsock recorded.
 */
import { rmSync } from 'node:fs';
import { execa } from 'execa';
import t from 'tap';
import { childEnv, hostEnv, readLog, uniqueName, waitFor, type HostEnv } from './harness.js';
import { holdConnection, installPodsockService, podsockBin, serviceState, waitState } from './podsock-units.js';
import type { StatusDocument, StatusView } from '../../src/status/status-view.js';

const h = hostEnv(t);

/** `podsock status NAME --json` run by the built bin; the one service it shows. */
async function status(h: HostEnv, name: string): Promise<StatusView> {
  const r = await execa(process.execPath, [podsockBin, 'status', name, '--json'], { env: childEnv(h), extendEnv: false, reject: false });
  if (r.exitCode !== 0) throw new Error(`podsock status ${name} exited with ${r.exitCode}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as StatusDocument;
  if (doc.services.length !== 1) throw new Error(`expected one service, got ${r.stdout}`);
  return doc.services[0] as StatusView;
}

if (h !== null) {
  await t.test('a service activated by a connection shows as running with its cold start and the connection, then stopped', async (t) => {
    const name = uniqueName('st');
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=3s'] });
    const held = await holdConnection(svc.port);
    t.teardown(() => held.destroy());
    await waitState(h, name, ['active'], 60_000);
    const mainPid = Number((await serviceState(h, name)).MainPID);

    // The count is written at most once a second, and handover mode counts the kernel's connections by polling.
    const running = await waitFor('status to show the connection', async () => {
      const s = await status(h, name);
      return s.running && s.active === 1 ? s : false;
    }, 30_000, 200).catch(async (err: Error) => {
      t.comment(readLog(svc.log));
      throw err;
    });
    t.match(running, { name, scope: 'system', mode: 'handover', state: 'ready', running: true, pid: mainPid, active: 1, idleDeadline: null, consecutiveFailures: 0, image: h.fixtureImage });
    t.ok(typeof running.lastColdStartMs === 'number' && running.lastColdStartMs > 0, `a cold-start time was recorded (${running.lastColdStartMs} ms)`);
    t.equal(running.sockets.length, 1, 'the socket systemd passed');
    t.ok(running.file.endsWith(`/${name}.status`));

    held.destroy();
    const idle = await waitFor('status to show the idle deadline', async () => {
      const s = await status(h, name);
      return s.active === 0 && s.idleDeadline !== null ? s : false;
    }, 30_000, 200);
    t.ok(Date.parse(idle.idleDeadline as string) > Date.parse(idle.updatedAt), 'the idle deadline lies after the last count');

    await waitState(h, name, ['inactive', 'failed'], 60_000);
    t.equal((await serviceState(h, name)).Result, 'success', 'the service went idle and exited cleanly');
    const stopped = await status(h, name);
    t.match(stopped, { state: 'stopped', running: false, pid: null, active: 0, idleDeadline: null, consecutiveFailures: 0, lastColdStartMs: running.lastColdStartMs });
    t.same(stopped.lastColdStartMs, running.lastColdStartMs, 'the last cold start is kept');
    t.ok(Date.parse(stopped.since) >= Date.parse(running.since), 'stopped since after it was running');
    // Teardowns run in order: this one after the service's own (it is stopped by then).
    t.teardown(() => rmSync(stopped.file, { force: true }));
  });
}

if (h !== null) {
  await t.test('a service that fails to start shows as failed with the error and the consecutive failures', async (t) => {
    const name = uniqueName('stf');
    const image = 'localhost/podsock-status-no-such-image:0';
    const svc = await installPodsockService(t, h, name, {
      containerFile: ['[Container]', `Image=${image}`, 'Network=none', 'Pull=never', ''].join('\n'),
    });
    const held = await holdConnection(svc.port);
    t.teardown(() => held.destroy());
    const failed = await waitFor('status to show the failure', async () => {
      const s = await status(h, name).catch(() => null);
      return s !== null && s.state === 'failed' ? s : false;
    }, 60_000, 200).catch(async (err: Error) => {
      t.comment(readLog(svc.log));
      throw err;
    });
    held.destroy();
    t.match(failed, { name, state: 'failed', running: false, image, lastColdStartMs: null });
    t.ok(failed.consecutiveFailures >= 1, `consecutive failures counted (${failed.consecutiveFailures})`);
    t.match(failed.lastError, new RegExp(`image '${image.replaceAll('.', '\\.')}' is not present locally`));
    t.ok(failed.lastErrorAt !== null);
    t.teardown(() => rmSync(failed.file, { force: true }));
  });
}
