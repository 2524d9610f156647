/**
 * Rootless proxy mode publishes the backend on a 127.0.0.1 port podsock picks before podman starts.
 * Another local user who listens on that port must not receive the clients' bytes: podsock checks
 * that the port's listener is its own uid before the first byte goes there. The case: Network=none,
 * where podman drops the published port, so the port stays free for anyone; the other user here is
 * root (the test itself), listening on the port it reads from podsock's log while the container
 * delays its READY=1.
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { httpGet, readLog, uniqueName, waitFor } from './harness.js';
import { commentLogOnFailure, installUserService, rootlessEnv, userServiceState } from './rootless-harness.js';

const r = rootlessEnv(t);

if (r !== null && !r.network) {
  t.pass('no rootless networking', { skip: r.networkReason ?? 'unknown reason' });
} else if (r !== null) {
  await t.test('rootless proxy: a listener of another user on the published port gets nothing', async (t) => {
    const name = uniqueName('rlpp');
    const svc = await installUserService(t, r, name, {
      containerFile: [
        '[Container]',
        `Image=${r.fixtureImage}`,
        'Pull=never',
        `Volume=${r.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
        'Network=none',
        `Environment=FIXTURE_NAME=${name}`,
        'Environment=FIXTURE_READY_DELAY_MS=4000',
        '[Podsock]',
        'Mode=proxy',
        'Backend=8080',
        'Ready=notify',
        'IdleTimeout=infinity',
        '',
      ].join('\n'),
    });
    commentLogOnFailure(t, svc.log);
    const reply = httpGet(svc.url('/secret'), 60_000).then(
      (res) => `${res.status} ${res.body}`,
      (err: Error) => `error: ${err.message}`,
    );
    const port = await waitFor('the published port in podsock\'s log', async () => {
      const m = /--publish 127\.0\.0\.1:(\d+):8080\/tcp/.exec(readLog(svc.log));
      return m === null ? false : Number(m[1]);
    }, 30_000);
    const got: string[] = [];
    const thief = createServer((s: Socket) => {
      s.on('data', (d: Buffer) => got.push(d.toString()));
      s.on('error', () => undefined);
      s.end('HTTP/1.0 200 OK\r\n\r\nnot the app');
    });
    thief.listen(port, '127.0.0.1');
    await once(thief, 'listening');
    t.teardown(() => thief.close());

    const answer = await reply;
    t.notMatch(answer, /not the app/, "the client never got the other user's reply");
    t.same(got, [], "the other user's listener received nothing");
    await waitFor('podsock to give up', async () => /Refusing to proxy/.test(readLog(svc.log)), 30_000);
    t.match(readLog(svc.log), new RegExp(`Refusing to proxy to container 'podsock-${name}': '127\\.0\\.0\\.1:${port}', published for container port 8080, is listened on by uid 0, not by podsock's uid ${r.uid}`));
    const s = await userServiceState(r, name);
    t.not(s.ActiveState, 'active', 'the start failed');
  });
}
