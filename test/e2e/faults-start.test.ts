/**
 * Faults before a container serves, under the real systemd user manager: podman missing (not on
 * PATH, or PODSOCK_PODMAN naming nothing), podman failing at once (exit 125, from
 * test/fixtures/fake-podman.sh), the image missing (real podman), and podman hanging before any
 * container exists. Each must end the start with a status line a person can act on, the exit status
 * of its cause, and no container left behind.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { fakePodman } from './faults-helpers.js';
import { containerExists, hostEnv, logFile, readLog, systemctl, uniqueName } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';

const h = hostEnv(t);

/** The arguments of every podman invocation the fake logged, in order. */
function invocations(file: string): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.slice(l.indexOf(' ') + 1));
}

if (h !== null) {
  await t.test('podman not on PATH: exit 69, the status says what to install', async (t) => {
    const name = uniqueName('nopath');
    const svc = await installPodsockService(t, h, name, { service: ['Environment=PATH=/nonexistent-podsock-bin'] });
    const started = await systemctl(h, 'start', `${name}.service`);
    t.not(started.exitCode, 0, 'the start job fails');
    const s = await waitState(h, name, ['failed'], 30_000);
    t.equal(s.ExecMainStatus, '69', 'exit status 69 (PODSOCK_ERR_PODMAN_MISSING)');
    t.equal(s.StatusText, "Failed: podman not found on PATH '/nonexistent-podsock-bin': install podman (Debian: apt-get install podman) or set PODSOCK_PODMAN");
    t.match(readLog(svc.log), /podman not found on PATH '\/nonexistent-podsock-bin'/);
    t.notOk(await containerExists(h, svc.containerName));
    await systemctl(h, 'stop', `${name}.socket`);
  });

  await t.test('PODSOCK_PODMAN naming nothing: exit 69, the status names the variable', async (t) => {
    const name = uniqueName('nopm');
    const svc = await installPodsockService(t, h, name, { service: ['Environment=PODSOCK_PODMAN=/nonexistent/podman'] });
    await systemctl(h, 'start', `${name}.service`);
    const s = await waitState(h, name, ['failed'], 30_000);
    t.equal(s.ExecMainStatus, '69');
    t.equal(s.StatusText, "Failed: podman not found: PODSOCK_PODMAN='/nonexistent/podman' is not an executable file");
    t.match(readLog(svc.log), /PODSOCK_PODMAN='\/nonexistent\/podman'/);
    await systemctl(h, 'stop', `${name}.socket`);
  });

  await t.test('podman run exits 125 at once: exit 125, podman\'s message in the log, stop and rm by name', async (t) => {
    const name = uniqueName('p125');
    const calls = logFile(h, `${name}-podman-calls`);
    const svc = await installPodsockService(t, h, name, {
      service: [`Environment=PODSOCK_PODMAN=${fakePodman} FAKE_PODMAN=exit:125 FAKE_PODMAN_LOG=${calls}`],
    });
    const begin = Date.now();
    await systemctl(h, 'start', `${name}.service`);
    const s = await waitState(h, name, ['failed'], 30_000);
    t.ok(Date.now() - begin < 15_000, `failed at once (${Date.now() - begin} ms)`);
    t.equal(s.ExecMainStatus, '125', "podman's own status is passed on");
    t.equal(s.StatusText, `Failed: Failed to start container '${svc.containerName}': podman exited with 125 (see podman's message above)`);
    t.match(readLog(svc.log), /Error: fake podman: run fails with exit status 125/, "podman's stderr reaches the log");
    const argv = invocations(calls);
    t.match(argv[0], /^run /, 'first podman run');
    t.ok(argv.some((a) => a.startsWith('stop ') && a.endsWith(svc.containerName)), `then stop by name (${argv.join(' | ')})`);
    t.ok(argv.some((a) => a.startsWith('rm ') && a.endsWith(svc.containerName)), 'and rm by name');
    t.notOk(await containerExists(h, svc.containerName));
    await systemctl(h, 'stop', `${name}.socket`);
  });

  await t.test('image missing (real podman, Pull=never): exit 69, the status names the image', async (t) => {
    const name = uniqueName('noimg');
    const image = `localhost/podsock-no-such-image-${name}:latest`;
    const svc = await installPodsockService(t, h, name, {
      containerFile: ['[Container]', `Image=${image}`, 'Network=none', 'Pull=never', ''].join('\n'),
    });
    await systemctl(h, 'start', `${name}.service`);
    const s = await waitState(h, name, ['failed'], 60_000);
    t.equal(s.ExecMainStatus, '69', 'exit status 69 (PODSOCK_ERR_PODMAN)');
    t.equal(s.StatusText, `Failed: Failed to start container '${svc.containerName}': image '${image}' is not present locally (podman exit 125)`);
    t.notOk(await containerExists(h, svc.containerName), 'nothing left behind');
    await systemctl(h, 'stop', `${name}.socket`);
  });

  await t.test('podman run hangs before creating anything: StartTimeout ends it, exit 1, nothing left running', async (t) => {
    const name = uniqueName('hang');
    const svc = await installPodsockService(t, h, name, {
      podsock: ['StartTimeout=3s', 'StopTimeout=1s'],
      service: [`Environment=PODSOCK_PODMAN=${fakePodman} FAKE_PODMAN=hang`],
    });
    const begin = Date.now();
    await systemctl(h, 'start', `${name}.service`);
    const s = await waitState(h, name, ['failed'], 60_000);
    const took = Date.now() - begin;
    t.ok(took >= 3000 && took < 30_000, `failed after the 3 s start timeout (${took} ms)`);
    t.equal(s.ExecMainStatus, '1', 'exit status 1 (PODSOCK_ERR_READY_TIMEOUT)');
    t.equal(s.StatusText, `Failed: Container '${svc.containerName}' was not ready (Ready=started) within StartTimeout=3s`);
    const after = await serviceState(h, name);
    t.equal(after.MainPID, '0', 'no process of the unit is left');
    t.comment(`hanging podman: failed after ${took} ms`);
    await systemctl(h, 'stop', `${name}.socket`);
  });
}
