/**
 * `podsock run` in proxy mode under the real systemd user manager with real podman: the fixture binds
 * its own port (no LISTEN_FDS) and podsock holds every connection until the readiness probe passes.
 */
import net from 'node:net';
import t from 'tap';
import { rawHttpGet } from '../helpers/raw-http.js';
import { containerExists, hostEnv, httpGet, podman, readLog, uniqueName, waitFor } from './harness.js';
import { holdConnection, installPodsockService, serviceState, waitState } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

/** One raw HTTP/1.0 exchange on its own connection; resolves with the whole reply or rejects on reset/refusal. */
function rawGet(port: number, path: string, timeoutMs = 60_000): Promise<string> {
  return rawHttpGet(net.connect({ host: '127.0.0.1', port }), path, timeoutMs);
}

/** Half-close: write 'twelve bytes', shut down the write side, and resolve with the whole reply. */
function halfClosed(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('connect', () => s.end('twelve bytes'));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  });
}

if (h !== null) {
  for (const ready of ['tcp', 'http:/health']) {
    await t.test(`Ready=${ready} gates on a backend that opens its port 2 s late`, async (t) => {
      const name = uniqueName('px');
      const svc = await installPodsockService(t, h, name, {
        containerFile: proxyContainerFile(h, name, { container: ['Environment=FIXTURE_LISTEN_DELAY_MS=2000'], podsock: [`Ready=${ready}`, 'IdleTimeout=infinity'] }),
      });
      const begin = Date.now();
      const body = await rawGet(svc.port, '/late');
      t.match(body, new RegExp(`^HTTP/1\\.[01] 200[^]*hello from ${name} path=/late`), 'the first request is answered, not refused');
      const s = await serviceState(h, name);
      t.equal(s.ActiveState, 'active');
      const readyIn = (Number(s.ActiveEnterTimestampMonotonic) - Number(s.ExecMainStartTimestampMonotonic)) / 1000;
      t.ok(readyIn >= 2000, `ready only after the port opened (${readyIn} ms)`);
      t.ok(Date.now() - begin >= 2000);
      t.match(s.StatusText, /Serving: .*proxy mode/);
    });
  }

  await t.test('200 concurrent connections at activation: 200 replies; half-close keeps the reply', async (t) => {
    const name = uniqueName('pc');
    const svc = await installPodsockService(t, h, name, {
      containerFile: proxyContainerFile(h, name, { container: ['Environment=FIXTURE_LISTEN_DELAY_MS=1000'], podsock: ['IdleTimeout=infinity'] }),
    });
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => rawGet(svc.port, `/c${i}`)));
    const ok = results.filter((r, i) => r.status === 'fulfilled' && r.value.includes(`path=/c${i} `)).length;
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    t.equal(ok, 200, `200 replies (failures: ${failures.slice(0, 3).join('; ')})`);

    t.equal(await halfClosed(svc.port), 'twelve bytesbytes=12\n', 'echo plus the byte count sent after our half-close');
  });

  await t.test('the relay runs on io_uring; a unit that forbids io_uring falls back to recv/send and says why', async (t) => {
    for (const forbid of [false, true]) {
      const name = uniqueName(forbid ? 'pf' : 'pu');
      const svc = await installPodsockService(t, h, name, {
        containerFile: proxyContainerFile(h, name, { podsock: ['IdleTimeout=infinity'] }),
        // seccomp: io_uring_setup(2) fails with EPERM, as under a container runtime's default profile.
        service: forbid ? ['SystemCallFilter=~io_uring_setup', 'SystemCallErrorNumber=EPERM'] : [],
      });
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => rawGet(svc.port, `/e${i}`)));
      t.equal(replies.filter((r, i) => r.includes(`path=/e${i} `)).length, 20, `${forbid ? 'forbidden' : 'allowed'}: 20 replies`);
      t.equal(await halfClosed(svc.port), 'twelve bytesbytes=12\n', 'half-close keeps the reply');
      // podsock's log lines reach the file once its logger attached (log.ts): wait for them.
      const want = forbid ? /Relaying connections with recv\/send: io_uring is not available \(io_uring_setup: EPERM/ : /Relaying connections through io_uring/;
      await waitFor('the relay engine in the log', async () => want.test(readLog(svc.log)), 15_000).catch(() => undefined);
      t.match(readLog(svc.log), want, forbid ? 'the fallback is logged with its cause' : 'io_uring is used');
    }
  });

  await t.test('idle exit and re-activation, 20 cycles; a held connection keeps it up', async (t) => {
    const name = uniqueName('pi');
    const svc = await installPodsockService(t, h, name, {
      containerFile: proxyContainerFile(h, name, { podsock: ['IdleTimeout=2s'] }),
    });
    let answered = 0;
    for (let i = 0; i < 20; i++) {
      const r = await httpGet(svc.url(`/cycle-${i}`), 30_000);
      if (r.status === 200 && r.body.includes(`path=/cycle-${i} `)) answered++;
      const s = await waitState(h, name, ['inactive'], 30_000);
      if (s.Result !== 'success') t.fail(`cycle ${i}: result ${s.Result}`);
    }
    t.equal(answered, 20, 'every request of 20 cycles answered');
    t.notOk(await containerExists(h, svc.containerName), 'no container when idle');

    const held = await holdConnection(svc.port);
    t.teardown(() => held.destroy());
    await waitState(h, name, ['active'], 30_000);
    await new Promise((r) => setTimeout(r, 5000));
    t.equal((await serviceState(h, name)).ActiveState, 'active', 'a held connection keeps the service up');
    held.destroy();
    await waitState(h, name, ['inactive'], 30_000);
    t.pass('idle again once the connection closed');
  });

  await t.test('the backend crashes mid-connection: client closed, podsock fails, the next connection is served', async (t) => {
    const name = uniqueName('pk');
    const svc = await installPodsockService(t, h, name, {
      containerFile: proxyContainerFile(h, name, { podsock: ['IdleTimeout=infinity'] }),
    });
    // An echo connection that stays open while the container is killed.
    const closed = new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: svc.port });
      s.on('connect', () => s.write('ping'));
      s.once('data', () => void podman(h, 'kill', svc.containerName));
      s.on('close', (hadError) => resolve(hadError ? 'error' : 'closed'));
      s.on('error', () => undefined);
    });
    const how = await closed;
    t.ok(how === 'closed' || how === 'error', `the client was closed (${how})`);
    const s = await waitState(h, name, ['failed', 'inactive'], 30_000);
    t.equal(s.ActiveState, 'failed', 'podsock exited non-zero');
    t.not(s.ExecMainStatus, '0');
    t.match(readLog(svc.log), /exited with code 137/);
    const r = await httpGet(svc.url('/fresh'), 30_000);
    t.match(r.body, /path=\/fresh/, 'a fresh container served the next connection');
  });
}

await t.test('standalone --listen in both modes: lazy start, idle stop, start again', async (t) => {
  if (h === null) return;
  const { execa } = await import('execa');
  const { childEnv, freePort } = await import('./harness.js');
  const { podsockBin } = await import('./podsock-units.js');
  for (const mode of ['handover', 'proxy'] as const) {
    const name = uniqueName(`sa-${mode}`);
    const port = await freePort();
    const args = [podsockBin, 'run', name, '--listen', `127.0.0.1:${port}`, '--idle-timeout', '2s', '--mode', mode];
    if (mode === 'proxy') args.push('--backend', '8080');
    args.push('--', ...h.podmanRunArgs, ...(mode === 'handover' ? ['--network', 'none'] : []), '-e', `FIXTURE_NAME=${name}`, h.fixtureImage);
    const child = execa(process.execPath, args, { env: childEnv(h), reject: false, all: true, extendEnv: false });
    t.teardown(async () => {
      child.kill('SIGTERM');
      await child;
      await podman(h, 'rm', '-f', '--ignore', `podsock-${name}`);
    });
    await waitFor('podsock to listen', async () => {
      try {
        await new Promise<void>((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port }, () => {
            s.destroy();
            resolve();
          });
          s.on('error', reject);
        });
        return true;
      } catch {
        return false;
      }
    }, 20_000, 100);
    // The probe connection above may itself start the container; wait until it is idle-stopped again.
    await waitFor('no container before the first request', async () => !(await containerExists(h, `podsock-${name}`)), 30_000, 200);
    t.match((await httpGet(`http://127.0.0.1:${port}/a`, 30_000)).body, /path=\/a/, `${mode}: lazy start served`);
    t.ok(await containerExists(h, `podsock-${name}`), `${mode}: container running`);
    await waitFor('idle stop', async () => !(await containerExists(h, `podsock-${name}`)), 30_000, 200);
    t.pass(`${mode}: stopped after idle, podsock still listening`);
    t.match((await httpGet(`http://127.0.0.1:${port}/b`, 30_000)).body, /path=\/b/, `${mode}: started again`);
    child.kill('SIGTERM');
    const r = await child;
    t.equal(r.exitCode, 0, `${mode}: SIGTERM stops everything, exit 0`);
    await waitFor('no container after SIGTERM', async () => !(await containerExists(h, `podsock-${name}`)), 30_000, 200);
    t.pass(`${mode}: no container after SIGTERM`);
  }
});


