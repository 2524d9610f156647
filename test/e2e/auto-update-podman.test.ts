/**
 * `podman auto-update` updates a running podsock service, under the real user manager with the test
 * host's registry: podman finds the container by its io.containers.autoupdate and PODMAN_SYSTEMD_UNIT
 * labels (the unit here does not set PODMAN_SYSTEMD_UNIT: podsock names its own unit), pulls the new
 * image and restarts the unit. podsock says READY=1 only once the new container is ready, so the
 * restart job is done then; a new image that never becomes ready makes podsock fail at StartTimeout,
 * the restart job fails, and podman tags the previous image again and restarts the unit with it.
 */
import t from 'tap';
import { hostEnv, httpGet, podman, uniqueName } from './harness.js';
import { installPodsockService, serviceState } from './podsock-units.js';
import { buildImage, containerImage, imageId, imagesOf, podmanAutoUpdate, podmanReg, push, registryFacts } from './registry.js';
import { autoUpdateContainerFile } from './service-files.js';

const h = hostEnv(t);
const reg = h === null ? null : registryFacts(t);

if (h !== null && reg !== null) {
  await t.test('a running service: updated to a good image, rolled back from one that never becomes ready', async (t) => {
    const name = uniqueName('au-podman');
    const repo = `${reg.address}/${name}`;
    const ref = `${repo}:latest`;
    const v1 = await buildImage(t, h, `localhost/${name}:v1`, [`LABEL io.podsock.test=${name}-v1`]);
    const v2 = await buildImage(t, h, `localhost/${name}:v2`, [`LABEL io.podsock.test=${name}-v2`]);
    const bad = await buildImage(t, h, `localhost/${name}:bad`, [`LABEL io.podsock.test=${name}-bad`, 'ENV FIXTURE_NEVER_READY=1']);
    t.teardown(async () => {
      await podman(h, 'rmi', '--force', ref);
    });
    // The service starts from the image as pulled from the registry, so that podman knows its digest there.
    await push(h, reg, v1, ref);
    const pulled = await podmanReg(h, reg, 'pull', '--quiet', ref);
    t.equal(pulled.exitCode, 0, `pulled ${ref}: ${pulled.stderr}`);

    const svc = await installPodsockService(t, h, name, {
      containerFile: autoUpdateContainerFile(h, name, ref, 'registry', ['StartTimeout=5s', 'IdleTimeout=infinity']),
    });
    const first = await httpGet(svc.url('/v1'), 60_000);
    t.equal(first.status, 200, 'the service serves from the first image');
    t.equal(await containerImage(h, svc.containerName), v1, 'the container runs the first image');
    const label = await podman(h, 'container', 'inspect', '--format', '{{index .Config.Labels "PODMAN_SYSTEMD_UNIT"}}', svc.containerName);
    t.equal(label.stdout.trim(), `${name}.service`, "PODMAN_SYSTEMD_UNIT names podsock's unit");

    // A good new image.
    await push(h, reg, v2, ref);
    const dry = await podmanAutoUpdate(h, reg, '--dry-run');
    t.same(dry.rows.filter((r) => r.Unit === `${name}.service`).map((r) => r.Updated), ['pending'], `--dry-run sees the update: ${dry.result.stdout} ${dry.result.stderr}`);
    const up = await podmanAutoUpdate(h, reg);
    const upRows = up.rows.filter((r) => r.Unit === `${name}.service`);
    t.same(upRows.map((r) => [r.Policy, r.Updated]), [['registry', 'true']], `updated: ${up.result.stdout} ${up.result.stderr}`);
    t.equal((await serviceState(h, name)).ActiveState, 'active', 'the service runs after the restart');
    t.equal(await containerImage(h, svc.containerName), v2, 'the container runs the new image');
    t.equal((await httpGet(svc.url('/v2'), 30_000)).status, 200, 'and serves');

    // A new image that never becomes ready: podsock fails at StartTimeout, podman rolls back.
    await push(h, reg, bad, ref);
    const back = await podmanAutoUpdate(h, reg);
    const backRows = back.rows.filter((r) => r.Unit === `${name}.service`);
    t.same(backRows.map((r) => r.Updated), ['rolled back'], `rolled back: ${back.result.stdout} ${back.result.stderr}`);
    t.equal(await imageId(h, ref), v2, `${ref} names the previous image again`);
    const s = await serviceState(h, name);
    t.equal(s.ActiveState, 'active', 'the service runs again after the rollback');
    t.equal(await containerImage(h, svc.containerName), v2, 'the container runs the previous image');
    t.equal((await httpGet(svc.url('/after'), 30_000)).status, 200, 'and serves');
    const containers = await podman(h, 'ps', '--all', '--noheading', '--format', '{{.Names}}', '--filter', `name=${name}`);
    t.same(containers.stdout.split('\n').filter((l) => l !== ''), [svc.containerName], 'no other container is left');

    await podman(h, 'rmi', '--force', bad);
    t.same(await imagesOf(h, repo), [`${ref} ${v2}`], `only ${ref} is left of the repository, on the previous image`);
  });
}
