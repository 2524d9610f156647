/**
 * Handover mode with a unix socket under the real systemd user manager: podsock counts the listener's
 * connections through sock_diag, so a held unix connection keeps the service up, and a socket name that
 * forges a /proc/net/unix row (any local user can bind one) does not.
 */
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { bindForgedUnixRow } from '../helpers/forged-unix-row.js';
import { hostEnv, httpGet, uniqueName } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';

const h = hostEnv(t);

if (h !== null) {
  await t.test('unix handover: a held connection keeps it up, a forged /proc/net/unix row does not', async (t) => {
    const name = uniqueName('hu');
    const path = join(h.xdgRuntimeDir, `${name}.sock`);
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=2s'], socket: [`ListenStream=${path}`] });
    await bindForgedUnixRow(t, path);

    // Activated by a connection to the unix socket, which is held open (no request is sent, so the
    // server does not close it): the service stays up.
    const held = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ path }, () => resolve(s));
      s.once('error', reject);
    });
    t.teardown(() => held.destroy());
    await waitState(h, name, ['active'], 30_000);
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      await new Promise((r) => setTimeout(r, 500));
      const st = await serviceState(h, name);
      if (st.ActiveState !== 'active') {
        t.fail(`service went ${st.ActiveState} while a unix connection was open`);
        break;
      }
    }
    t.pass('stayed active for 5 s with a held unix connection');
    held.destroy();
    const s = await waitState(h, name, ['inactive'], 30_000);
    t.equal(s.Result, 'success', 'idle exit once the real connection closed, the forged row notwithstanding');

    // And over TCP, once more.
    t.match((await httpGet(svc.url('/tcp'), 30_000)).body, /path=\/tcp/);
    await waitState(h, name, ['inactive'], 30_000);
  });
}
