/**
 * The container's view of podsock's notify directory, with real podman under the real systemd user
 * manager: the directory is mounted read-only, so a container (root inside it) can neither create a
 * file nor a directory there, and its READY=1 still reaches podsock through the socket in it. On the
 * host the directory holds only podsock's socket, and it is gone after the stop.
 */
import { existsSync, readdirSync } from 'node:fs';
import t from 'tap';
import { hostEnv, podman, readLog, systemctl, uniqueName } from './harness.js';
import { installPodsockService, serviceState } from './podsock-units.js';

const h = hostEnv(t);

// The fixture server after a shell that tries to write into the notify directory and says how it went
// in the container's STATUS= (the fixture sends FIXTURE_STATUS, then READY=1).
const TRY_WRITES =
  "Exec=/bin/sh -c 'touch /run/podsock-notify/planted 2>/dev/null && f=written || f=refused; " +
  'mkdir /run/podsock-notify/tree 2>/dev/null && d=written || d=refused; ' +
  'FIXTURE_STATUS="notify dir: touch $f, mkdir $d" exec /usr/bin/node /app/fixture-server.js\'';

if (h !== null) {
  await t.test('the container cannot write into the notify directory, and READY=1 still arrives', async (t) => {
    const name = uniqueName('nro');
    const svc = await installPodsockService(t, h, name, { container: [TRY_WRITES], podsock: ['Ready=notify', 'IdleTimeout=infinity'] });
    // Type=notify: the start returns once podsock relayed READY=1, which came from the container.
    const started = await systemctl(h, 'start', `${name}.service`);
    t.equal(started.exitCode, 0, `started (${readLog(svc.log)})`);
    const s = await serviceState(h, name);
    t.equal(s.ActiveState, 'active', 'active: the container\'s READY=1 arrived');
    t.match(s.StatusText, /; container: notify dir: touch refused, mkdir refused$/, 'both writes failed inside the container');

    const mounts = await podman(h, 'inspect', '--format', '{{range .Mounts}}{{.Source}}={{.Destination}}={{.RW}};{{end}}', svc.containerName);
    const notifyMount = mounts.stdout.split(';').find((m) => m.includes('=/run/podsock-notify='));
    t.match(notifyMount, /=\/run\/podsock-notify=false$/, `mounted read-only (${mounts.stdout.trim()})`);
    const notifyDir = (notifyMount ?? '').split('=')[0] ?? '';
    t.same(readdirSync(notifyDir), ['notify.sock'], 'on the host it holds only podsock\'s socket');

    await systemctl(h, 'stop', `${name}.service`);
    t.equal((await serviceState(h, name)).Result, 'success');
    t.notOk(existsSync(notifyDir), 'removed at the stop');
  });
}
