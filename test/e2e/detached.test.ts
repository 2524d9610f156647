/**
 * podman runs detached (`podman run -d`, as Quadlet runs it) under the real systemd user manager: while
 * a service serves, in handover and in proxy mode, no podman process is left in its process tree, only
 * podsock and the container's conmon (podsock's child: podsock is its subreaper); the container's own
 * output still reaches the unit's output; a container that exits 3 after it was ready makes podsock
 * exit 3 (the status is conmon's, read by podsock as its reaper, not lost to `--rm`).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { containerExists, descendants, hostEnv, httpGet, podman, readLog, systemctl, uniqueName, waitFor } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';

const h = hostEnv(t);

if (h !== null) {
  for (const mode of ['handover', 'proxy'] as const) {
    await t.test(`${mode}: no podman process while serving; conmon is podsock's child; the container's output reaches the unit`, async (t) => {
      const name = uniqueName(`dt-${mode[0] ?? 'x'}`);
      const vol = `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`;
      const svc = await installPodsockService(t, h, name, {
        containerFile: [
          '[Container]',
          `Image=${h.fixtureImage}`,
          'Pull=never',
          vol,
          `Environment=FIXTURE_NAME=${name}`,
          ...(mode === 'handover' ? ['Network=none'] : []),
          '[Podsock]',
          `Mode=${mode}`,
          ...(mode === 'proxy' ? ['Backend=8080'] : []),
          'IdleTimeout=infinity',
          '',
        ].join('\n'),
        // As units/podsock@.service has it, for `podman auto-update`.
        service: ['Environment=PODMAN_SYSTEMD_UNIT=%n'],
      });
      const r = await httpGet(svc.url('/detached'), 60_000);
      t.equal(r.status, 200);
      t.match(r.body, new RegExp(`^hello from ${name} path=/detached`), 'served by the container');
      const s = await serviceState(h, name);
      const main = Number(s.MainPID);
      t.ok(main > 0, 'running');
      // podman run -d exits once the container runs: wait for it to be gone, bounded.
      const tree = await waitFor('no podman process under podsock', async () => {
        const tr = descendants(main);
        return tr.some((p) => p.comm === 'podman') ? false : tr;
      }, 20_000, 100).catch(() => descendants(main));
      t.same(tree.filter((p) => p.comm === 'podman'), [], 'no podman process in the service\'s process tree');
      const conmon = tree.filter((p) => p.comm === 'conmon');
      t.equal(conmon.length, 1, 'the container\'s conmon is there');
      const conmonParent = Number(readFileSync(`/proc/${conmon[0]?.pid ?? 0}/stat`, 'utf8').replace(/^.*\)\s*/, '').split(' ')[1]);
      t.equal(conmonParent, main, 'conmon is podsock\'s own child');
      t.match(readLog(svc.log), new RegExp(`fixture ${name}: connection #\\d+`), 'the container\'s stdout is in the unit\'s output');
      const label = await podman(h, 'inspect', svc.containerName, '--format', '{{index .Config.Labels "PODMAN_SYSTEMD_UNIT"}}');
      t.equal(label.stdout.trim(), `${name}.service`, 'podman auto-update finds the unit by the container\'s label');
      await systemctl(h, 'stop', `${name}.service`);
      const after = await serviceState(h, name);
      t.equal(after.Result, 'success', 'stopped cleanly');
      t.notOk(await containerExists(h, svc.containerName), 'no container left');
    });
  }

  await t.test('a container that exits 3 after it was ready: podsock exits 3 (the exit code is not lost to --rm)', async (t) => {
    const name = uniqueName('dt-exit');
    const svc = await installPodsockService(t, h, name, {
      container: ['Exec=/bin/sh -c "echo detached-exit-soon; sleep 2; exit 3"'],
      podsock: ['Ready=started', 'IdleTimeout=infinity'],
    });
    await systemctl(h, 'start', '--no-block', `${name}.service`);
    await waitState(h, name, ['active'], 60_000);
    const s = await waitState(h, name, ['failed', 'inactive'], 60_000);
    t.equal(s.ExecMainStatus, '3', 'podsock exited with the container\'s code');
    t.equal(s.Result, 'exit-code');
    const log = readLog(svc.log);
    t.match(log, /detached-exit-soon/, 'the container\'s output is in the unit\'s output');
    t.match(log, /exited with code 3/);
    await waitFor('the container to be gone', async () => !(await containerExists(h, svc.containerName)), 30_000);
  });
}
