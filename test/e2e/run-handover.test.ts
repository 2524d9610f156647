/**
 * `podsock run` in handover mode under the real systemd user manager with real podman and the
 * fixture image: activation, readiness relay, failures, stop, SIGKILL recovery, idle exit.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import t from 'tap';
import { containerExists, hostEnv, httpGet, podman, readLog, systemctl, uniqueName, waitFor } from './harness.js';
import { holdConnection, installPodsockService, serviceState, waitState } from './podsock-units.js';

const h = hostEnv(t);

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

if (h !== null) {
  await t.test('handover: the container gets the socket; MainPID is podsock; status is podsock\'s line', async (t) => {
    const name = uniqueName('ho');
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=infinity'] });
    const r = await httpGet(svc.url('/first'), 30_000);
    t.equal(r.status, 200);
    t.match(r.body, new RegExp(`^hello from ${name} path=/first pid=1\\n$`));
    const s = await waitState(h, name, ['active'], 30_000);
    t.match(cmdline(s.MainPID ?? ''), /dist\/bin\/podsock\.cjs run /, 'the main pid is podsock');
    t.equal(s.MainPID, s.ExecMainPID, 'MainPID was never changed');
    t.match(s.StatusText, /^Serving: container 'podsock-[^']+' ready in \d+ ms \(handover mode, no idle timeout\)/);
    t.ok(await containerExists(h, svc.containerName), 'the container runs');

    // The notify socket's directory: a random name below podsock's 0700 runtime directory, reachable only
    // through the container's bind mount of it.
    const mounts = await podman(h, 'inspect', '--format', '{{range .Mounts}}{{.Source}}={{.Destination}};{{end}}', svc.containerName);
    const notifyMount = mounts.stdout.split(';').find((m) => m.endsWith('=/run/podsock-notify'));
    t.ok(notifyMount, `the notify directory is mounted (${mounts.stdout})`);
    const notifyDir = (notifyMount ?? '').replace(/=\/run\/podsock-notify$/, '');
    t.match(notifyDir, /\/podsock-[A-Za-z0-9]{6}$/, 'an unguessable name');
    t.equal(statSync(dirname(notifyDir)).mode & 0o777, 0o700, 'the runtime directory above it is private (0700)');
    t.equal(statSync(notifyDir).mode & 0o777, 0o711, 'the notify directory can be traversed, not listed');

    // systemctl stop: inactive, not failed, and no container left.
    await systemctl(h, 'stop', `${name}.service`);
    const after = await serviceState(h, name);
    t.equal(after.ActiveState, 'inactive');
    t.equal(after.Result, 'success');
    t.notOk(await containerExists(h, svc.containerName), 'no container after stop');
    t.match(readLog(svc.log), /Stopping/);
  });

  await t.test('Ready=notify: a dependent unit starts only after the container\'s READY; its STATUS shows', async (t) => {
    const name = uniqueName('nt');
    const dep = `${name}-dep`;
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_READY_DELAY_MS=2000 "FIXTURE_STATUS=warming up done"'],
      podsock: ['Ready=notify', 'IdleTimeout=infinity'],
      extraUnits: {
        [`${dep}.service`]: [
          '[Unit]',
          `Requires=${name}.service`,
          `After=${name}.service`,
          '[Service]',
          'Type=oneshot',
          'RemainAfterExit=yes',
          'ExecStart=/bin/true',
          '',
        ].join('\n'),
      },
    });
    // Starting the dependent starts the service (not the socket): podsock gets its fds all the same.
    const started = systemctl(h, 'start', `${dep}.service`);
    const activating = await waitFor('the service to be activating', async () => {
      const s = await serviceState(h, name);
      return s.ActiveState === 'activating' ? s : false;
    }, 20_000, 50);
    t.equal(activating.ActiveState, 'activating', 'activating until READY');
    await started;
    const s = await serviceState(h, name);
    const d = await systemctl(h, 'show', '-p', 'ActiveEnterTimestampMonotonic', '-p', 'ExecMainStartTimestampMonotonic', `${dep}.service`);
    const depStart = Number(/ExecMainStartTimestampMonotonic=(\d+)/.exec(d.stdout)?.[1]);
    const ready = Number(s.ActiveEnterTimestampMonotonic);
    const execStart = Number(s.ExecMainStartTimestampMonotonic);
    t.equal(s.ActiveState, 'active');
    t.ok(ready - execStart >= 2_000_000, `READY came after the fixture's 2 s delay (${(ready - execStart) / 1e6} s)`);
    t.ok(depStart >= ready, `the dependent started after the service became active (${depStart} >= ${ready})`);
    t.match(s.StatusText, /container: warming up done/, "the fixture's STATUS= shows");
    t.match((await httpGet(svc.url('/x'), 20_000)).body, /path=\/x/);
  });

  await t.test('MAINPID=1 from the container does not change MainPID', async (t) => {
    const name = uniqueName('mp');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_NOTIFY_EXTRA=MAINPID=1'],
      podsock: ['Ready=notify', 'IdleTimeout=infinity'],
    });
    await httpGet(svc.url('/'), 30_000);
    const s = await waitState(h, name, ['active'], 20_000);
    t.equal(s.MainPID, s.ExecMainPID);
    t.not(s.MainPID, '1');
    t.match(cmdline(s.MainPID ?? ''), /podsock\.cjs run/);
    // podsock's log lines reach the file up to a second late (pino loads after start-up), with their own times.
    await waitFor('the dropped MAINPID= in the log', async () => /Dropped MAINPID= from the container/.test(readLog(svc.log)), 10_000, 50);
    t.match(readLog(svc.log), /Dropped MAINPID= from the container/);
  });

  await t.test('a container that exits 3 before READY fails the unit at once, naming code 3', async (t) => {
    const name = uniqueName('ex');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_EXIT_BEFORE_READY=3 FIXTURE_READY_DELAY_MS=500'],
      podsock: ['Ready=notify', 'StartTimeout=60s'],
    });
    const begin = Date.now();
    await systemctl(h, 'start', `${name}.service`);
    const s = await waitState(h, name, ['failed'], 30_000);
    const took = Date.now() - begin;
    t.ok(took < 15_000, `failed long before StartTimeout=60s (${took} ms)`);
    t.equal(s.ExecMainStatus, '3', 'exit status 3');
    t.match(s.StatusText, /exited with code 3 before it was ready/);
    t.equal(s.StatusErrno, '3');
    t.notOk(await containerExists(h, svc.containerName), 'no container left');
    await systemctl(h, 'stop', `${name}.socket`);
  });

  await t.test('never READY with StartTimeout=3s: failed after about 3 s, no container left', async (t) => {
    const name = uniqueName('nr');
    const svc = await installPodsockService(t, h, name, {
      container: ['Environment=FIXTURE_NEVER_READY=1'],
      podsock: ['Ready=notify', 'StartTimeout=3s', 'StopTimeout=2s'],
    });
    const begin = Date.now();
    await systemctl(h, 'start', `${name}.service`);
    const s = await waitState(h, name, ['failed'], 40_000);
    const took = Date.now() - begin;
    t.ok(took >= 3000 && took < 20_000, `failed after the 3 s start timeout (${took} ms)`);
    t.match(s.StatusText, /not ready \(Ready=notify\) within StartTimeout=3s/);
    t.notOk(await containerExists(h, svc.containerName), 'no container left');
    await systemctl(h, 'stop', `${name}.socket`);
  });

  await t.test('SIGKILL of podsock, then a new connection: served', async (t) => {
    const name = uniqueName('kl');
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=infinity'] });
    t.match((await httpGet(svc.url('/before'), 30_000)).body, /path=\/before/);
    await waitState(h, name, ['active'], 20_000);
    await systemctl(h, 'kill', '--signal=SIGKILL', '--kill-who=main', `${name}.service`);
    await waitState(h, name, ['inactive', 'failed'], 30_000);
    const r = await httpGet(svc.url('/after'), 30_000);
    t.match(r.body, /path=\/after/, 'the next activation replaced the leftover container and served');
  });

  await t.test('IdleTimeout=2s: idle exit, re-activation, a held connection keeps it up, 20 cycles', async (t) => {
    const name = uniqueName('id');
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=2s'] });
    t.match((await httpGet(svc.url('/1'), 30_000)).body, /path=\/1/);
    const s = await waitState(h, name, ['inactive'], 30_000);
    t.equal(s.Result, 'success', 'idle exit is a clean stop');
    t.notOk(await containerExists(h, svc.containerName), 'the container is gone when idle');

    // A connection held open for 6 s keeps it alive.
    const held = await holdConnection(svc.port);
    t.teardown(() => held.destroy());
    await waitState(h, name, ['active'], 30_000);
    const t0 = Date.now();
    while (Date.now() - t0 < 6000) {
      await new Promise((r) => setTimeout(r, 500));
      const st = await serviceState(h, name);
      if (st.ActiveState !== 'active') {
        t.fail(`service went ${st.ActiveState} while a connection was open`);
        break;
      }
    }
    t.pass('stayed active for 6 s with a held connection');
    held.destroy();
    await waitState(h, name, ['inactive'], 30_000);

    let answered = 0;
    for (let i = 0; i < 20; i++) {
      const r = await httpGet(svc.url(`/cycle-${i}`), 30_000);
      if (r.status === 200 && r.body.includes(`path=/cycle-${i}`)) answered++;
      await waitState(h, name, ['inactive'], 30_000);
    }
    t.equal(answered, 20, 'every request of 20 activation/idle cycles answered');
    t.notOk(await containerExists(h, svc.containerName));
  });


  await t.test('WatchdogSec: podsock pings while the container runs; once the container pings, only its pings count', async (t) => {
    const name = uniqueName('wd');
    const svc = await installPodsockService(t, h, name, { podsock: ['IdleTimeout=infinity'], service: ['WatchdogSec=2s'] });
    await httpGet(svc.url('/'), 30_000);
    await waitState(h, name, ['active'], 20_000);
    await new Promise((r) => setTimeout(r, 6000));
    const s = await serviceState(h, name);
    t.equal(s.ActiveState, 'active', 'still active after 3 watchdog periods: podsock pinged');

    // A container that sends WATCHDOG=1 once takes over the pings; it never pings again, so systemd's watchdog fires.
    const name2 = uniqueName('wdc');
    const svc2 = await installPodsockService(t, h, name2, {
      container: ['Environment=FIXTURE_NOTIFY_EXTRA=WATCHDOG=1'],
      podsock: ['Ready=notify', 'IdleTimeout=infinity'],
      service: ['WatchdogSec=2s'],
    });
    await httpGet(svc2.url('/'), 30_000);
    const failed = await waitFor('the watchdog to fire', async () => {
      const st = await serviceState(h, name2);
      return st.Result === 'watchdog' ? st : false;
    }, 30_000, 200);
    t.equal(failed.Result, 'watchdog', "the container's own (missing) pings decide once it has pinged");
    await systemctl(h, 'stop', `${name2}.socket`);
    await waitFor('no container', async () => !(await containerExists(h, svc2.containerName)), 30_000);
    t.pass('no container left after the watchdog kill');
  });

  await t.test('bad configuration fails the start with file, line and key', async (t) => {
    const cases: Array<{ label: string; file: string; want: RegExp }> = [
      { label: 'unknown key', file: `[Container]\nImage=${h.fixtureImage}\nColour=blue\n`, want: /\.container:3: unknown key 'Colour' in section \[Container\]/ },
      { label: 'bad time span', file: `[Container]\nImage=${h.fixtureImage}\n[Podsock]\nIdleTimeout=5 parsecs\n`, want: /\.container:4.*IdleTimeout.*'5 parsecs'/ },
      { label: 'missing Image', file: `[Container]\nNetwork=none\n`, want: /\.container.*Image=/ },
    ];
    for (const c of cases) {
      const name = uniqueName('bad');
      const svc = await installPodsockService(t, h, name, { containerFile: c.file });
      await systemctl(h, 'start', `${name}.service`);
      const s = await waitState(h, name, ['failed'], 20_000);
      t.equal(s.ExecMainStatus, '78', `${c.label}: exit status 78 (configuration)`);
      t.match(readLog(svc.log), c.want, `${c.label}: the message names file, line and key`);
      t.match(s.StatusText, c.want, `${c.label}: and so does the unit status`);
      await systemctl(h, 'stop', `${name}.socket`);
    }
  });
}
