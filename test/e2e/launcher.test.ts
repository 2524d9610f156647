/**
 * podsock-launch under the real systemd user manager with real podman, as generated units run podsock:
 * the first activation leaves a plan; the next one's podman starts from it before node boots and podsock
 * adopts it; a changed .container file makes the plan stale; a changed unit environment gives a podman
 * command podsock would not run, so podsock stops that podman and starts its own. Every activation
 * answers, and nothing is left once the service stops.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { containerExists, hostEnv, httpGet, readLog, systemctl, uniqueName, waitFor } from './harness.js';
import { installPodsockService, podsockLaunch, serviceState } from './podsock-units.js';

const h = hostEnv(t);

const count = (text: string, needle: string): number => text.split(needle).length - 1;

if (h !== null) {
  await t.test('podsock-launch: plan, adopted prestart, stale plan, refused prestart', { skip: existsSync(podsockLaunch) ? false : 'podsock-launch is not built' }, async (t) => {
    const name = uniqueName('ln');
    const svc = await installPodsockService(t, h, name, { launcher: true, podsock: ['IdleTimeout=infinity'] });
    const configFile = join(svc.configDir, `${name}.container`);

    /** One activation: a request answered by the container, then `systemctl stop` and nothing left. */
    const activation = async (label: string): Promise<string> => {
      const r = await httpGet(svc.url(`/${label}`), 60_000);
      t.equal(r.status, 200, `${label}: answered`);
      t.match(r.body, new RegExp(`^hello from ${name} path=/${label} pid=1\\n$`), `${label}: by the container`);
      const s = await serviceState(h, name);
      t.match(readFileSync(`/proc/${s.MainPID ?? '0'}/cmdline`, 'utf8').replace(/\0/g, ' '), /dist\/bin\/podsock\.cjs run /, `${label}: the main pid is podsock (node), not the launcher`);
      await systemctl(h, 'stop', `${name}.service`);
      const after = await serviceState(h, name);
      t.equal(after.Result, 'success', `${label}: stopped cleanly`);
      t.notOk(await containerExists(h, svc.containerName), `${label}: no container after stop`);
      // podsock has exited: its log is complete.
      return readLog(svc.log);
    };

    let log = await activation('first');
    t.equal(count(log, 'podsock-launch did not start podman: no plan yet'), 1, 'first: no plan yet, podsock started podman');

    log = await activation('second');
    t.equal(count(log, 'podman was started by podsock-launch from the last plan; adopted it'), 1, 'second: podsock adopted the podman started from the plan');

    // A changed .container file: podsock-launch does not use the plan (and podsock writes a new one).
    writeFileSync(configFile, `${readFileSync(configFile, 'utf8').replace('[Podsock]', 'Environment=LN_EXTRA=1\n\n[Podsock]')}`);
    log = await activation('third');
    t.equal(count(log, 'podsock-launch did not start podman: stale'), 1, 'third: the plan was stale');
    t.equal(count(log, 'adopted it'), 1, 'third: nothing adopted');

    log = await activation('fourth');
    t.equal(count(log, 'adopted it'), 2, 'fourth: the new plan was used');

    // A variable added to the unit reaches podman's environment but is no part of what podsock-launch
    // checks: it starts podman from the plan, and podsock, whose command differs, stops that podman.
    const dropIn = join(h.unitDir, `${name}.service.d`);
    mkdirSync(dropIn, { recursive: true });
    t.teardown(async () => {
      rmSync(dropIn, { recursive: true, force: true });
      await systemctl(h, 'daemon-reload');
    });
    writeFileSync(join(dropIn, 'extra.conf'), '[Service]\nEnvironment=LN_UNIT_EXTRA=1\n');
    await systemctl(h, 'daemon-reload');
    log = await activation('fifth');
    t.equal(count(log, 'podsock-launch started podman from an out-of-date plan; stopping it and starting podman afresh'), 1, 'fifth: the prestarted podman was refused');
    t.equal(count(log, 'adopted it'), 2, 'fifth: nothing adopted');

    log = await activation('sixth');
    t.equal(count(log, 'adopted it'), 3, 'sixth: the plan written by the fifth activation was used');
  });

  await t.test('podsock-launch: a podman started from the plan that fails is adopted as a failed start; the plan goes', { skip: existsSync(podsockLaunch) ? false : 'podsock-launch is not built' }, async (t) => {
    const name = uniqueName('lnf');
    // A bind mount whose host directory can be taken away: podman then fails before the container starts.
    const hostDir = join(h.stateDir, 'config', `${name}-data`);
    mkdirSync(hostDir, { recursive: true });
    t.teardown(() => rmSync(hostDir, { recursive: true, force: true }));
    const svc = await installPodsockService(t, h, name, { launcher: true, podsock: ['IdleTimeout=infinity'], container: [`Volume=${hostDir}:/podsock-test-data:ro`] });

    const first = await httpGet(svc.url('/first'), 60_000);
    t.equal(first.status, 200, 'first: answered');
    await systemctl(h, 'stop', `${name}.service`);

    // The plan names the bind mount; without its directory the prestarted podman exits at once.
    rmSync(hostDir, { recursive: true, force: true });
    const pending = httpGet(svc.url('/after-failure'), 90_000);
    pending.catch(() => undefined);
    await waitFor('the failed start in the log', async () => count(readLog(svc.log), 'adopted it') === 1 && /Failed to start container|exited before/.test(readLog(svc.log)), 60_000);
    // Back again: the next activation (systemd re-triggers for the waiting connection) starts podman
    // itself, since the failed start removed the plan, and answers the request that waited.
    mkdirSync(hostDir, { recursive: true });
    const r = await pending;
    t.equal(r.status, 200, 'the request that waited through the failed start is answered');
    await systemctl(h, 'stop', `${name}.service`);
    const log = readLog(svc.log);
    t.equal(count(log, 'adopted it'), 1, 'the failing podman was adopted');
    t.ok(count(log, 'podsock-launch did not start podman: no plan yet') >= 2, 'after the failure there was no plan');
    t.notOk(await containerExists(h, svc.containerName), 'no container after stop');
  });
}
