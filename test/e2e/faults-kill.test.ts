/**
 * Abrupt ends under the real systemd user manager with real podman: SIGKILL of podsock while the
 * container starts (handover) and while it serves (proxy mode, a connection open), SIGKILL of the
 * container while it serves (handover), and a container that ignores SIGTERM at an idle stop. podsock
 * cannot clean up after its own SIGKILL; the unit's ExecStopPost (as in units/podsock@.service) and
 * `--replace` on the next start must. Each ends with no container or container process left and the
 * next connection served.
 */
import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';
import { SOCKET_MIN_AGE_MS } from '../../src/sd/notify-sweep.js';
import { checkAfterStop, closedWithin, notifySocketsOf, openEchoConnection, running } from './faults-helpers.js';
import { containerExists, hostEnv, httpGet, podman, readLog, systemctl, uniqueName, waitFor } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

if (h !== null) {
  await t.test('SIGKILL of podsock while the container starts: failed (signal), container removed, next served', async (t) => {
    const name = uniqueName('kl-start');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_READY_DELAY_MS=6000'],
      podsock: ['Ready=notify', 'IdleTimeout=infinity'],
    });
    await systemctl(h, 'start', '--no-block', `${name}.service`);
    await waitFor('the container to run', () => running(h, svc.containerName), 30_000, 100);
    t.equal((await serviceState(h, name)).ActiveState, 'activating', 'not ready yet');
    await systemctl(h, 'kill', '--kill-who=main', '--signal=SIGKILL', `${name}.service`);
    const s = await waitState(h, name, ['failed', 'inactive'], 30_000);
    t.equal(s.ActiveState, 'failed');
    t.equal(s.Result, 'signal');
    t.equal(s.ExecMainStatus, '9', 'killed by signal 9');
    await checkAfterStop(t, h, svc, ['failed']);
  });

  await t.test('SIGKILL of podsock while serving in proxy mode: the open connection ends, next served', async (t) => {
    const name = uniqueName('kl-proxy');
    const svc = await installPodsockService(t, h, name, { containerFile: proxyContainerFile(h, name, { podsock: ['IdleTimeout=infinity'] }) });
    const { closed } = await openEchoConnection(t, svc.port);
    const notify = notifySocketsOf(Number((await serviceState(h, name)).MainPID));
    t.equal(notify.length, 2, "podsock holds the container's notify socket and podman's");
    if (notify.length !== 2) return;
    // A sweep leaves sockets younger than this alone (they may be being bound): let them age first.
    const age = Date.now() - Math.min(...notify.map((p) => statSync(p).ctimeMs));
    if (age < SOCKET_MIN_AGE_MS) await sleep(SOCKET_MIN_AGE_MS - age + 200);
    await systemctl(h, 'kill', '--kill-who=main', '--signal=SIGKILL', `${name}.service`);
    const s = await waitState(h, name, ['failed', 'inactive'], 30_000);
    t.equal(s.Result, 'signal');
    await closedWithin(closed, 10_000);
    t.pass('the open connection was closed with podsock');
    t.ok(notify.every((p) => existsSync(p)), 'the killed podsock left its notify directories');
    await checkAfterStop(t, h, svc, ['failed']);
    // The next podsock, once ready, removes what the killed one left (sd/notify-sweep.ts).
    await waitFor('the leftover notify directories to be removed', async () => notify.every((p) => !existsSync(dirname(p))), 10_000, 100);
    t.pass('the next activation removed the leftover notify directories');
  });

  await t.test('SIGKILL of the container while serving (handover): podsock fails with 137, next served', async (t) => {
    const name = uniqueName('kl-ctr');
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=infinity'] });
    t.match((await httpGet(svc.url('/before'), 30_000)).body, /path=\/before /);
    await waitState(h, name, ['active'], 30_000);
    const k = await podman(h, 'kill', '--signal', 'KILL', svc.containerName);
    t.equal(k.exitCode, 0, `podman kill: ${k.stderr.trim()}`);
    const s = await waitState(h, name, ['failed', 'inactive'], 30_000);
    t.equal(s.ActiveState, 'failed', 'podsock exited non-zero');
    t.equal(s.ExecMainStatus, '137', "the container's status is passed on");
    t.equal(s.StatusText, `Failed: Container '${svc.containerName}' exited with code 137`);
    t.equal(s.StatusErrno, '137');
    await checkAfterStop(t, h, svc, ['failed']);
  });

  await t.test('a container that ignores SIGTERM at an idle stop: killed after StopTimeout, clean exit', async (t) => {
    const name = uniqueName('kl-idle');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_IGNORE_SIGTERM=1'],
      podsock: ['IdleTimeout=2s', 'StopTimeout=2s'],
    });
    t.match((await httpGet(svc.url('/'), 30_000)).body, /hello/);
    const active = await waitState(h, name, ['active'], 30_000);
    const s = await waitState(h, name, ['inactive', 'failed'], 60_000);
    const took = (Number(s.InactiveEnterTimestampMonotonic) - Number(active.ActiveEnterTimestampMonotonic)) / 1000;
    t.comment(`from ready to inactive: ${took.toFixed(0)} ms (IdleTimeout=2s + StopTimeout=2s)`);
    t.equal(s.ActiveState, 'inactive');
    t.equal(s.Result, 'success', 'an idle stop is a clean exit even when the container had to be killed');
    t.ok(took >= 4000, `idle 2 s, then 2 s for SIGTERM before the kill (${took.toFixed(0)} ms)`);
    t.match(readLog(svc.log), /ignoring SIGTERM/);
    t.notOk(await containerExists(h, svc.containerName));
    await checkAfterStop(t, h, svc, ['inactive']);
  });
}
