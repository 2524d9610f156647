import t from 'tap';
import { TRIAL_SLACK_S, trialConfig, trialRuntimeDir, trialTimeoutSeconds, withoutAutoUpdateLabel } from '../../../src/autoupdate/trial.js';
import type { ServiceConfig } from '../../../src/config/load.js';

void t.test('the trial container carries no io.containers.autoupdate label, in either spelling', async (t) => {
  t.same(
    withoutAutoUpdateLabel(['--label', 'io.containers.autoupdate=registry', '--label', 'a=b', '--label=io.containers.autoupdate=local', '--env', 'X=1']),
    ['--label', 'a=b', '--env', 'X=1'],
  );
  t.same(withoutAutoUpdateLabel(['--label']), ['--label'], 'a dangling flag is left to podman');
});

void t.test("the trial configuration: the service's, started from the image id as CONTAINER-update, never idle, with a time limit", async (t) => {
  const cfg = {
    name: 'web',
    containerName: 'podsock-web',
    image: 'quay.io/a/web:1',
    podmanOptions: ['--label', 'io.containers.autoupdate=registry', '--timeout=5'],
    idleTimeoutMs: 5000,
    startTimeoutMs: 90_000,
    stopTimeoutMs: 10_000,
    mode: 'handover',
  } as unknown as ServiceConfig;
  const c = trialConfig(cfg, 'f'.repeat(64));
  t.match(c, { name: 'web', containerName: 'podsock-web-update', image: 'f'.repeat(64), idleTimeoutMs: null, mode: 'handover' });
  t.same(c.podmanOptions, ['--timeout=5', '--timeout=110'], "the trial's limit comes after the service's own options, so podman takes it");
  t.ok(Object.isFrozen(c));
});

void t.test('the trial time limit: StartTimeout + StopTimeout, rounded up to seconds, + the slack', async (t) => {
  t.equal(trialTimeoutSeconds({ startTimeoutMs: 90_000, stopTimeoutMs: 10_000 }), 100 + TRIAL_SLACK_S);
  t.equal(trialTimeoutSeconds({ startTimeoutMs: 1_500, stopTimeoutMs: 1 }), 2 + TRIAL_SLACK_S);
});

void t.test("the trial's runtime directory: fixed per service, short, and different for different services", async (t) => {
  const a = trialRuntimeDir('/run/podsock', 'web');
  t.equal(a, trialRuntimeDir('/run/podsock', 'web'), 'the same service, the same directory: a killed run is found');
  t.not(a, trialRuntimeDir('/run/podsock', 'web2'));
  t.match(a, /^\/run\/podsock\/update-[0-9a-f]{16}$/);
  t.equal(trialRuntimeDir('/run/podsock', 'x'.repeat(200)).length, a.length, 'a long name makes no longer path');
});
