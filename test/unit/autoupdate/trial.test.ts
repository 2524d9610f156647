import t from 'tap';
import { trialConfig, withoutAutoUpdateLabel } from '../../../src/autoupdate/trial.js';
import type { ServiceConfig } from '../../../src/config/load.js';

void t.test('the trial container carries no io.containers.autoupdate label, in either spelling', async (t) => {
  t.same(
    withoutAutoUpdateLabel(['--label', 'io.containers.autoupdate=registry', '--label', 'a=b', '--label=io.containers.autoupdate=local', '--env', 'X=1']),
    ['--label', 'a=b', '--env', 'X=1'],
  );
  t.same(withoutAutoUpdateLabel(['--label']), ['--label'], 'a dangling flag is left to podman');
});

void t.test("the trial configuration: the service's, started from the image id as CONTAINER-update, never idle", async (t) => {
  const cfg = { name: 'web', containerName: 'podsock-web', image: 'quay.io/a/web:1', podmanOptions: ['--label', 'io.containers.autoupdate=registry'], idleTimeoutMs: 5000, mode: 'handover' } as unknown as ServiceConfig;
  const c = trialConfig(cfg, 'f'.repeat(64));
  t.match(c, { name: 'web', containerName: 'podsock-web-update', image: 'f'.repeat(64), podmanOptions: [], idleTimeoutMs: null, mode: 'handover' });
  t.ok(Object.isFrozen(c));
});
