/**
 * `systemctl stop` (SIGTERM to podsock alone, KillMode=mixed) in every phase of an activation, under
 * the real systemd user manager with real podman: before the container exists (a podman that is
 * slow to start, test/fixtures/fake-podman.sh), while the container starts (not READY yet), while
 * it serves (proxy mode, a connection open), and while it stops (a container that ignores SIGTERM;
 * once, and with a second SIGTERM during the stop). Each must end with the unit stopped, no container
 * and no container process left, and the next connection served by a fresh activation.
 */
import t from 'tap';
import { checkAfterStop, closedWithin, fakePodman, openEchoConnection, running } from './faults-helpers.js';
import { containerExists, hostEnv, httpGet, logFile, podman, readLog, systemctl, uniqueName, waitFor } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

if (h !== null) {
  await t.test('SIGTERM before the container exists (podman slow to start)', async (t) => {
    const name = uniqueName('st-pre');
    const calls = logFile(h, `${name}-podman-calls`);
    const svc = await installPodsockService(t, h, name, {
      podsock: ['IdleTimeout=infinity', 'StopTimeout=2s'],
      service: [`Environment=PODSOCK_PODMAN=${fakePodman} FAKE_PODMAN=delay:3 FAKE_PODMAN_LOG=${calls}`],
    });
    await systemctl(h, 'start', '--no-block', `${name}.service`);
    await waitFor('podsock to run podman', async () => /^\d+ run /m.test(readLog(calls)), 30_000, 50);
    t.notOk(await containerExists(h, svc.containerName), 'no container yet');
    const begin = Date.now();
    const stop = await systemctl(h, 'stop', `${name}.service`);
    const took = Date.now() - begin;
    t.equal(stop.exitCode, 0);
    t.comment(`stop before the container existed took ${took} ms`);
    t.ok(took < 25_000, `the stop did not wait for TimeoutStopSec (${took} ms)`);
    await checkAfterStop(t, h, svc, ['inactive']);
    t.equal((await serviceState(h, name)).Result, 'success');
  });

  await t.test('SIGTERM while the container starts (before READY=1)', async (t) => {
    const name = uniqueName('st-start');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_READY_DELAY_MS=6000'],
      podsock: ['Ready=notify', 'IdleTimeout=infinity', 'StopTimeout=5s'],
    });
    await systemctl(h, 'start', '--no-block', `${name}.service`);
    await waitFor('the container to run', () => running(h, svc.containerName), 30_000, 100);
    t.equal((await serviceState(h, name)).ActiveState, 'activating', 'not ready yet');
    const begin = Date.now();
    await systemctl(h, 'stop', `${name}.service`);
    const took = Date.now() - begin;
    t.comment(`stop while starting took ${took} ms`);
    t.ok(took < 25_000, `the stop did not wait for TimeoutStopSec (${took} ms)`);
    await checkAfterStop(t, h, svc, ['inactive']);
    t.equal((await serviceState(h, name)).Result, 'success');
  });

  await t.test('SIGTERM while ready, proxy mode, a connection open: closed, stopped', async (t) => {
    const name = uniqueName('st-ready');
    const svc = await installPodsockService(t, h, name, {
      containerFile: proxyContainerFile(h, name, { podsock: ['IdleTimeout=infinity', 'StopTimeout=5s'] }),
    });
    // An echo exchange that is still open when the stop comes.
    const { closed } = await openEchoConnection(t, svc.port);
    t.equal((await serviceState(h, name)).ActiveState, 'active');
    const begin = Date.now();
    await systemctl(h, 'stop', `${name}.service`);
    t.comment(`stop while ready took ${Date.now() - begin} ms`);
    await closedWithin(closed, 10_000);
    t.pass('the open connection was closed');
    await checkAfterStop(t, h, svc, ['inactive']);
    t.equal((await serviceState(h, name)).Result, 'success');
  });

  await t.test('SIGTERM while stopping: a container that ignores SIGTERM is killed after StopTimeout', async (t) => {
    const name = uniqueName('st-ign');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_IGNORE_SIGTERM=1'],
      podsock: ['IdleTimeout=infinity', 'StopTimeout=3s'],
    });
    t.match((await httpGet(svc.url('/'), 30_000)).body, /hello/);
    await waitState(h, name, ['active'], 30_000);
    const begin = Date.now();
    await systemctl(h, 'stop', `${name}.service`);
    const took = Date.now() - begin;
    t.comment(`stop of a container ignoring SIGTERM with StopTimeout=3s took ${took} ms`);
    t.ok(took >= 3000 && took < 25_000, `podman stop waited StopTimeout=3s, then killed (${took} ms)`);
    t.match(readLog(svc.log), /ignoring SIGTERM/, 'the container did get SIGTERM');
    await checkAfterStop(t, h, svc, ['inactive']);
    t.equal((await serviceState(h, name)).Result, 'success');
  });

  await t.test('a second SIGTERM during that stop: podsock exits at once, nothing is left', async (t) => {
    const name = uniqueName('st-twice');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_IGNORE_SIGTERM=1'],
      // Longer than the unit's TimeoutStopSec=30: without the second SIGTERM this stop would take 30 s.
      podsock: ['IdleTimeout=infinity', 'StopTimeout=60s'],
    });
    t.match((await httpGet(svc.url('/'), 30_000)).body, /hello/);
    await waitState(h, name, ['active'], 30_000);
    const begin = Date.now();
    await systemctl(h, 'stop', '--no-block', `${name}.service`);
    await waitFor('the container to get SIGTERM', async () => /ignoring SIGTERM/.test(readLog(svc.log)), 20_000, 100);
    await systemctl(h, 'kill', '--kill-who=main', '--signal=SIGTERM', `${name}.service`);
    const s = await waitState(h, name, ['inactive', 'failed'], 40_000);
    const took = Date.now() - begin;
    t.comment(`stop with a second SIGTERM took ${took} ms (StopTimeout=60s, TimeoutStopSec=30); result ${s.Result}`);
    // podsock exits at once; ExecStopPost's `podman stop` then gives the container podman's default 10 s.
    t.ok(took < 25_000, `the second SIGTERM cut the stop short (${took} ms)`);
    t.match(readLog(svc.log), /Second stop request: stopping at once/);
    await checkAfterStop(t, h, svc, ['inactive', 'failed']);
    // The fresh activation's container ignores SIGTERM too: kill it, or the teardown waits out TimeoutStopSec.
    await podman(h, 'kill', svc.containerName);
  });
}
