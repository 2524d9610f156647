import t from 'tap';
import { containerFailedError, exitText, readyTimeoutError } from '../../../src/activation/failures.js';
import type { ServiceConfig } from '../../../src/config/load.js';

const cfg = (ready: ServiceConfig['ready']): ServiceConfig => ({ containerName: 'podsock-web', startTimeoutMs: 90_000, ready }) as ServiceConfig;

void t.test('exit text: the code, else the signal, else why neither is known', async (t) => {
  t.equal(exitText({ code: 3, signal: null }), 'code 3');
  t.equal(exitText({ code: null, signal: 'SIGKILL' }), 'signal SIGKILL');
  t.equal(exitText({ code: null, signal: null, lost: 'conmon gone' }), 'an unknown status (conmon gone)');
  t.equal(exitText({ code: null, signal: null }), 'an unknown status (no status reported)');
});

void t.test('the timeout names Ready= as written and StartTimeout= as a time span', async (t) => {
  const e = readyTimeoutError(cfg({ kind: 'http', path: '/health' } as ServiceConfig['ready']));
  t.equal(e.code, 'PODSOCK_ERR_READY_TIMEOUT');
  t.equal(e.message, "Container 'podsock-web' was not ready (Ready=http:/health) within StartTimeout=1min 30s");
});

void t.test("a container that failed while serving passes its own status on, else 1", async (t) => {
  const three = containerFailedError(cfg({ kind: 'started' } as ServiceConfig['ready']), { code: 3, signal: null });
  t.equal(three.code, 'PODSOCK_ERR_CONTAINER_FAILED');
  t.equal(three.exitCode, 3);
  t.equal(three.message, "Container 'podsock-web' exited with code 3");
  t.equal(containerFailedError(cfg({ kind: 'started' } as ServiceConfig['ready']), { code: null, signal: 'SIGKILL' }).exitCode, 1);
  t.equal(containerFailedError(cfg({ kind: 'started' } as ServiceConfig['ready']), { code: 300, signal: null }).exitCode, 1);
});
