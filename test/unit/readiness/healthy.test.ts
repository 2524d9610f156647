import t from 'tap';
import { classifyHealthcheck, healthcheckArgs, waitHealthy, type RunResult } from '../../../src/readiness/healthy.js';

// Outputs of podman 4.3.1 `healthcheck run` captured on the test machine.
const HEALTHY: RunResult = { exitCode: 0, stdout: '', stderr: '' };
const UNHEALTHY: RunResult = { exitCode: 1, stdout: 'unhealthy\n', stderr: '' };
const NO_SUCH: RunResult = {
  exitCode: 125,
  stdout: '',
  stderr:
    'Error: unable to look up nosuchcontainer to perform a health check: no container with name or ID "nosuchcontainer" found: no such container\n',
};
const NOT_RUNNING: RunResult = {
  exitCode: 125,
  stdout: '',
  stderr: 'Error: container d096670651c43a36fd25975cab809456a90c4175987357a6e42cd0854debb890 is not running\n',
};
const NO_HEALTHCHECK: RunResult = {
  exitCode: 125,
  stdout: '',
  stderr: 'Error: container 82366637d1a413b637a1be9dcc2e05d217091697bb7ab43018da3e5c4eb93ba9 has no defined healthcheck\n',
};

const fast = { initialMs: 1, maxMs: 5, factor: 2 };

/** A fake podman driver answering from a script, recording each call. */
function scripted(results: RunResult[]) {
  const calls: Array<{ args: string[]; signal: AbortSignal }> = [];
  const run = async (args: string[], signal: AbortSignal): Promise<RunResult> => {
    calls.push({ args, signal });
    const next = results.shift();
    if (next === undefined) throw new Error('script exhausted');
    return next;
  };
  return { run, calls };
}

void t.test('classifyHealthcheck', async (t) => {
  t.equal(classifyHealthcheck(HEALTHY), 'healthy');
  t.equal(classifyHealthcheck(UNHEALTHY), 'retry');
  t.equal(classifyHealthcheck(NO_SUCH), 'retry');
  t.equal(classifyHealthcheck(NOT_RUNNING), 'retry');
  t.equal(classifyHealthcheck(NO_HEALTHCHECK), 'no-healthcheck');
  t.equal(classifyHealthcheck({ exitCode: 1, stdout: '', stderr: 'has no defined healthcheck' }), 'retry', 'only with exit 125');
  t.equal(classifyHealthcheck({ exitCode: 125, stdout: '', stderr: 'Error: timed out waiting for lock' }), 'retry');
  t.same(healthcheckArgs('myapp'), ['healthcheck', 'run', 'myapp']);
});

void t.test('retries through not-created, not-running and unhealthy until healthy', async (t) => {
  const { run, calls } = scripted([NO_SUCH, NOT_RUNNING, UNHEALTHY, UNHEALTHY, HEALTHY]);
  const ac = new AbortController();
  await waitHealthy({ container: 'myapp', signal: ac.signal, run, backoff: fast });
  t.equal(calls.length, 5);
  t.ok(calls.every((c) => c.args.join(' ') === 'healthcheck run myapp'));
  t.ok(calls.every((c) => c.signal === ac.signal), 'the driver gets the signal to stop podman on abort');
});

void t.test('no defined healthcheck fails at once with a configuration error', async (t) => {
  const { run, calls } = scripted([UNHEALTHY, NO_HEALTHCHECK, HEALTHY]);
  await t.rejects(waitHealthy({ container: 'myapp', signal: new AbortController().signal, run, backoff: fast }), {
    code: 'PODSOCK_ERR_CONFIG',
    message:
      "Container 'myapp' has no healthcheck, but readiness is 'healthy': define one with --health-cmd or HEALTHCHECK in the image",
    details: { container: 'myapp', stderr: NO_HEALTHCHECK.stderr },
  });
  t.equal(calls.length, 2);
});

void t.test("a failing driver (podman missing) rejects with the driver's error", async (t) => {
  const err = Object.assign(new Error('podman not found'), { code: 'PODSOCK_ERR_PODMAN_MISSING' });
  await t.rejects(
    waitHealthy({ container: 'x', signal: new AbortController().signal, run: () => Promise.reject(err), backoff: fast }),
    err,
  );
});

void t.test('abort rejects with the reason promptly, even while podman runs', async (t) => {
  const reason = new Error('container exited');
  const ac = new AbortController();
  let runSignal: AbortSignal | undefined;
  const hung = waitHealthy({
    container: 'x',
    signal: ac.signal,
    run: (_args, signal) => {
      runSignal = signal;
      return new Promise<RunResult>(() => {});
    },
  });
  await new Promise((resolve) => setImmediate(resolve));
  const start = Date.now();
  ac.abort(reason);
  await t.rejects(hung, reason);
  t.ok(Date.now() - start < 1000, 'promptly');
  t.equal(runSignal?.aborted, true, 'the driver was told');

  const ac2 = new AbortController();
  const { run, calls } = scripted([UNHEALTHY, UNHEALTHY, UNHEALTHY]);
  const sleeping = waitHealthy({ container: 'x', signal: ac2.signal, run, backoff: { initialMs: 60_000, maxMs: 60_000 } });
  await new Promise((resolve) => setTimeout(resolve, 20));
  ac2.abort(reason);
  await t.rejects(sleeping, reason, 'during the backoff sleep');
  t.equal(calls.length, 1);
});
