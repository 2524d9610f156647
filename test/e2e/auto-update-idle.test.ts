/**
 * `podsock auto-update` updates an idle podsock service from the test host's registry: it skips the
 * service while it is active; --dry-run reports the update and changes nothing; a good new image is
 * started once (as CONTAINER-update), becomes ready, and the image name moves to it, so the next
 * activation runs it; a new image that never becomes ready is refused at StartTimeout, removed, the
 * name stays on the previous image, the exit status is 1 and the state directory records why.
 * After each step no container and no image of the trial is left. AutoUpdate=local the same way,
 * against the image the first run recorded; a run interrupted (SIGTERM) during a trial rolls back; a
 * run killed (SIGKILL) during a trial leaves a trial container that ends by itself, and the next run
 * tries the new image again; and a second run while the first tries an image skips the service,
 * naming the first run's pid.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import t, { type Test } from 'tap';
import { imageLockPath, serviceLockPath } from '../../src/autoupdate/lock.js';
import { trialRuntimeDir } from '../../src/autoupdate/trial.js';
import { childEnv, containerExists, descendants, hostEnv, httpGet, podman, uniqueName, waitFor, type HostEnv } from './harness.js';
import { installPodsockService, podsockBin, waitState, type PodsockService } from './podsock-units.js';
import { buildImage, containerImage, imageId, imagesOf, podmanReg, push, registryFacts, type Registry } from './registry.js';
import { autoUpdateContainerFile } from './service-files.js';

const h = hostEnv(t);
const reg = h === null ? null : registryFacts(t);

interface Row {
  service: string;
  image: string;
  policy: string | null;
  status: string;
  message: string;
  imageId: string | null;
}

async function podsockAutoUpdate(h: HostEnv, reg: Registry, svc: PodsockService, ...args: string[]): Promise<{ rows: Row[]; exitCode: number; stderr: string }> {
  return finished(startAutoUpdate(h, reg, svc, ...args));
}

function startAutoUpdate(h: HostEnv, reg: Registry, svc: PodsockService, ...args: string[]): ResultPromise {
  return execa(process.execPath, [podsockBin, 'auto-update', svc.name, '--json', ...args], {
    env: childEnv(h, { CONTAINERS_REGISTRIES_CONF: reg.registriesConf, PODSOCK_CONFIG_DIR: svc.configDir }),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
  });
}

async function finished(run: ResultPromise): Promise<{ rows: Row[]; exitCode: number; stderr: string }> {
  const r = await run;
  let rows: Row[] = [];
  try {
    rows = JSON.parse(String(r.stdout)) as Row[];
  } catch {
    // Shown by the assertions below through stderr.
  }
  return { rows, exitCode: r.exitCode ?? -1, stderr: `${String(r.stdout)}\n${String(r.stderr)}` };
}

/** What the service `name` of `image` leaves in the state directory: podsock run's status file, podsock auto-update's record and lock files. */
async function removeStateFiles(name: string, image: string): Promise<void> {
  const dir = '/run/podsock/state';
  for (const f of [join(dir, `${name}.status`), join(dir, `${name}.auto-update.json`), serviceLockPath(dir, name), imageLockPath(dir, image)]) await rm(f, { force: true });
}

/** No container of the service or of its trial is left. */
async function noContainers(h: HostEnv, svc: PodsockService): Promise<boolean> {
  return !(await containerExists(h, svc.containerName)) && !(await containerExists(h, `${svc.containerName}-update`));
}

if (h !== null && reg !== null) {
  await t.test('an idle service: updated to a good image, the next activation runs it; rolled back from one that never becomes ready', async (t) => {
    const name = uniqueName('au-idle');
    const repo = `${reg.address}/${name}`;
    const ref = `${repo}:latest`;
    const record = join('/run/podsock/state', `${name}.auto-update.json`);
    t.teardown(async () => {
      await podman(h, 'rmi', '--force', ref);
      await removeStateFiles(name, ref);
    });
    const v1 = await buildImage(t, h, `localhost/${name}:v1`, [`LABEL io.podsock.test=${name}-v1`]);
    const v2 = await buildImage(t, h, `localhost/${name}:v2`, [`LABEL io.podsock.test=${name}-v2`]);
    const bad = await buildImage(t, h, `localhost/${name}:bad`, [`LABEL io.podsock.test=${name}-bad`, 'ENV FIXTURE_NEVER_READY=1']);
    await push(h, reg, v1, ref);
    t.equal((await podmanReg(h, reg, 'pull', '--quiet', ref)).exitCode, 0, `pulled ${ref}`);

    const svc = await installPodsockService(t, h, name, {
      containerFile: autoUpdateContainerFile(h, name, ref, 'registry', ['StartTimeout=5s', 'IdleTimeout=2s']),
    });

    // Active: skipped, and said so.
    await push(h, reg, v2, ref);
    t.equal((await httpGet(svc.url('/v1'), 60_000)).status, 200);
    t.equal(await containerImage(h, svc.containerName), v1, 'the service runs the first image');
    const active = await podsockAutoUpdate(h, reg, svc);
    t.equal(active.exitCode, 0, active.stderr);
    t.match(active.rows, [{ service: name, status: 'skipped', message: /the service is active/ }], 'an active service is skipped');
    await waitState(h, name, ['inactive'], 30_000);
    await waitFor('the container to be gone', async () => noContainers(h, svc), 30_000);
    t.equal(await imageId(h, ref), v1, 'the skip changed nothing');

    // --dry-run: pending, nothing changed.
    const dry = await podsockAutoUpdate(h, reg, svc, '--dry-run');
    t.equal(dry.exitCode, 0, dry.stderr);
    t.match(dry.rows, [{ service: name, policy: 'registry', status: 'pending' }], '--dry-run reports the update');
    t.equal(await imageId(h, ref), v1, '--dry-run leaves the name on the image in use');
    t.same(await imagesOf(h, repo), [`${ref} ${v1}`], '--dry-run leaves no image behind');

    // A good image: tried once, then the name moves to it.
    const up = await podsockAutoUpdate(h, reg, svc);
    t.equal(up.exitCode, 0, up.stderr);
    t.match(up.rows, [{ service: name, image: ref, policy: 'registry', status: 'updated', imageId: v2 }], 'updated');
    t.equal(await imageId(h, ref), v2, `${ref} names the new image`);
    t.ok(await noContainers(h, svc), 'the trial container is gone, and the service stayed idle');
    t.match(JSON.parse(readFileSync(record, 'utf8')), { status: 'updated', imageId: v2 }, 'recorded in the state directory');
    t.equal((await httpGet(svc.url('/v2'), 60_000)).status, 200);
    t.equal(await containerImage(h, svc.containerName), v2, 'the next activation runs the new image');
    await waitState(h, name, ['inactive'], 30_000);
    await waitFor('the container to be gone', async () => noContainers(h, svc), 30_000);

    // An image that never becomes ready: refused at StartTimeout, the name stays on the previous one.
    await push(h, reg, bad, ref);
    await podman(h, 'rmi', bad);
    const back = await podsockAutoUpdate(h, reg, svc);
    t.equal(back.exitCode, 1, 'exit status 1 after a rollback');
    t.match(back.rows, [{ service: name, image: ref, status: 'rolled-back', imageId: v2, message: /did not become ready: .*within StartTimeout=5s; .* names the previous image/ }], back.stderr);
    t.equal(await imageId(h, ref), v2, `${ref} names the previous image`);
    t.same(await imagesOf(h, repo), [`${ref} ${v2}`], 'the refused image is not left in storage');
    t.equal(await imageId(h, bad), null, 'the refused image is gone');
    t.ok(await noContainers(h, svc), 'no trial container is left');
    t.match(JSON.parse(readFileSync(record, 'utf8')), { status: 'rolled-back', imageId: v2, refusedImageId: bad }, 'the failure is recorded in the state directory');
    t.equal((await httpGet(svc.url('/after'), 60_000)).status, 200);
    t.equal(await containerImage(h, svc.containerName), v2, 'the next activation runs the previous image');
  });
}

if (h !== null && reg !== null) {
  await t.test('AutoUpdate=local: the first run records the image; a new local build is tried, kept when ready, and the name goes back when it is not', async (t) => {
    const name = uniqueName('au-local');
    const ref = `localhost/${name}:latest`;
    t.teardown(async () => {
      await removeStateFiles(name, ref);
    });
    const v1 = await buildImage(t, h, ref, [`LABEL io.podsock.test=${name}-v1`]);
    const svc = await installPodsockService(t, h, name, {
      containerFile: autoUpdateContainerFile(h, name, ref, 'local', ['StartTimeout=5s', 'IdleTimeout=2s']),
    });
    const first = await podsockAutoUpdate(h, reg, svc);
    t.match(first.rows, [{ service: name, policy: 'local', status: 'not-updated', message: /first look/, imageId: v1 }], first.stderr);

    const v2 = await buildImage(t, h, ref, [`LABEL io.podsock.test=${name}-v2`]);
    const up = await podsockAutoUpdate(h, reg, svc);
    t.equal(up.exitCode, 0, up.stderr);
    t.match(up.rows, [{ status: 'updated', imageId: v2 }], 'a ready local build is kept');
    t.ok(await noContainers(h, svc), 'no trial container is left');

    const bad = await buildImage(t, h, ref, [`LABEL io.podsock.test=${name}-bad`, 'ENV FIXTURE_NEVER_READY=1']);
    const back = await podsockAutoUpdate(h, reg, svc);
    t.equal(back.exitCode, 1, 'exit status 1 after a rollback');
    t.match(back.rows, [{ status: 'rolled-back', imageId: v2, message: /did not become ready/ }], back.stderr);
    t.equal(await imageId(h, ref), v2, `${ref} names the previous image again`);
    t.ok(await imageId(h, bad), "the refused build stays in storage (it is the user's), without the name");
    t.ok(await noContainers(h, svc), 'no trial container is left');
    t.equal((await httpGet(svc.url('/local'), 60_000)).status, 200);
    t.equal(await containerImage(h, svc.containerName), v2, 'the next activation runs the previous image');
  });
}

/**
 * An idle AutoUpdate=registry service on the image the registry had first (v1), while the registry
 * already has a new image that never becomes ready (`bad`, removed from local storage so only a pull
 * brings it back). Its image, state and lock files are removed at the end of the test.
 */
async function serviceWithNeverReadyUpdate(t: Test, h: HostEnv, reg: Registry, prefix: string, startTimeout = '60s'): Promise<{ name: string; repo: string; ref: string; v1: string; bad: string; svc: PodsockService }> {
  const name = uniqueName(prefix);
  const repo = `${reg.address}/${name}`;
  const ref = `${repo}:latest`;
  t.teardown(async () => {
    await podman(h, 'rmi', '--force', ref);
    await removeStateFiles(name, ref);
  });
  const v1 = await buildImage(t, h, `localhost/${name}:v1`, [`LABEL io.podsock.test=${name}-v1`]);
  const bad = await buildImage(t, h, `localhost/${name}:bad`, [`LABEL io.podsock.test=${name}-bad`, 'ENV FIXTURE_NEVER_READY=1']);
  await push(h, reg, v1, ref);
  t.equal((await podmanReg(h, reg, 'pull', '--quiet', ref)).exitCode, 0, `pulled ${ref}`);
  await push(h, reg, bad, ref);
  await podman(h, 'rmi', bad);
  const svc = await installPodsockService(t, h, name, { containerFile: autoUpdateContainerFile(h, name, ref, 'registry', [`StartTimeout=${startTimeout}`, 'StopTimeout=2s']) });
  return { name, repo, ref, v1, bad, svc };
}

if (h !== null && reg !== null) {
  await t.test('interrupted while the new image is tried: the trial container goes, the image is rolled back and removed', async (t) => {
    const { name, repo, ref, v1, svc } = await serviceWithNeverReadyUpdate(t, h, reg, 'au-int');
    const run = startAutoUpdate(h, reg, svc);
    await waitFor('the trial container', async () => containerExists(h, `${svc.containerName}-update`), 60_000);
    run.kill('SIGTERM');
    const r = await finished(run);
    t.equal(r.exitCode, 1, r.stderr);
    t.match(r.rows, [{ service: name, status: 'rolled-back', imageId: v1, message: /did not become ready: interrupted/ }]);
    t.equal(await imageId(h, ref), v1, `${ref} names the previous image`);
    t.same(await imagesOf(h, repo), [`${ref} ${v1}`], 'the refused image is not left in storage');
    t.ok(await noContainers(h, svc), 'no trial container is left');
  });
}

if (h !== null && reg !== null) {
  await t.test('killed while the new image is tried: the trial container ends by itself, and the next run tries the image again', async (t) => {
    // StartTimeout=4s, StopTimeout=2s: the trial container's --timeout is 4 + 2 + 10 seconds.
    const { name, repo, ref, v1, bad, svc } = await serviceWithNeverReadyUpdate(t, h, reg, 'au-kill', '4s');
    const run = startAutoUpdate(h, reg, svc);
    // The trial container runs: conmon is podsock's child and `podman run --detach` has exited (killed
    // before, podman itself would fail and remove the container).
    await waitFor(
      'the trial container to run under conmon',
      async () => {
        const procs = descendants(run.pid!).map((p) => p.comm);
        return procs.includes('conmon') && !procs.includes('podman') && (await containerExists(h, `${svc.containerName}-update`));
      },
      60_000,
    );
    run.kill('SIGKILL');
    // Not awaited yet: the container's output still holds the run's stderr pipe, so the run only
    // finishes when the container does.
    await sleep(3000);
    t.ok(await containerExists(h, `${svc.containerName}-update`), 'no handler ran: the trial container is still there 3 s later');
    const trialDir = trialRuntimeDir('/run/podsock', name);
    t.ok(existsSync(trialDir), "the killed run's runtime directory is left");
    await waitFor('the trial container to end at its --timeout', async () => !(await containerExists(h, `${svc.containerName}-update`)), 60_000);
    t.equal((await finished(run)).exitCode, -1, 'the killed run has no exit status');
    t.ok(await noContainers(h, svc), 'the trial container ended and was removed without podsock');
    t.equal(await imageId(h, ref), v1, `${ref} still names the previous image`);

    // The pulled image is left unnamed by the killed run; the next run pulls it again and refuses it.
    const r = await podsockAutoUpdate(h, reg, svc);
    t.equal(r.exitCode, 1, r.stderr);
    t.match(r.rows, [{ service: name, status: 'rolled-back', imageId: v1, message: new RegExp(`image ${bad.slice(0, 12)} did not become ready`) }], r.stderr);
    t.same(await imagesOf(h, repo), [`${ref} ${v1}`], 'nothing of the new image is left');
    t.ok(await noContainers(h, svc), 'no trial container is left');
    t.notOk(existsSync(trialDir), 'the next trial removed what the killed run left, and its own');
  });
}

if (h !== null && reg !== null) {
  await t.test('two runs at once: the second skips the service the first is updating, naming its pid, and changes nothing', async (t) => {
    const { name, repo, ref, v1, bad, svc } = await serviceWithNeverReadyUpdate(t, h, reg, 'au-lock');
    const record = join('/run/podsock/state', `${name}.auto-update.json`);
    // The first run pulls the new image and tries it (it never becomes ready): it holds the service.
    const first = startAutoUpdate(h, reg, svc);
    t.teardown(() => void first.kill('SIGKILL'));
    await waitFor('the trial container', async () => containerExists(h, `${svc.containerName}-update`), 60_000);

    const second = await podsockAutoUpdate(h, reg, svc);
    t.equal(second.exitCode, 0, `a skip is not a failure: ${second.stderr}`);
    t.match(second.rows, [{ service: name, policy: 'registry', status: 'skipped', message: `another podsock auto-update is updating it, pid ${first.pid}`, imageId: null }], second.stderr);
    t.equal(await imageId(h, ref), v1, 'the second run did not pull: the name still names the image in use while the first tries the new one');
    t.ok(await containerExists(h, `${svc.containerName}-update`), "the first run's trial goes on");

    first.kill('SIGTERM');
    const r = await finished(first);
    t.match(r.rows, [{ service: name, status: 'rolled-back', imageId: v1 }], `the first run's outcome is its own: ${r.stderr}`);
    t.match(JSON.parse(readFileSync(record, 'utf8')), { status: 'rolled-back', refusedImageId: bad }, "the record is the first run's, not the skip's");
    t.ok(await noContainers(h, svc), 'no trial container is left');

    // The lock went with the first run: a run now looks at the service again.
    const after = await podsockAutoUpdate(h, reg, svc, '--dry-run');
    t.match(after.rows, [{ service: name, status: 'pending' }], after.stderr);
    t.same(await imagesOf(h, repo), [`${ref} ${v1}`], 'nothing of the new image is left');
  });
}
