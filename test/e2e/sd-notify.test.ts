/**
 * podsock's notify client against the real systemd user manager: a Type=notify unit (NotifyAccess=main)
 * whose main process sends STATUS= and, 2 s later, READY=1 through src/sd/notify-client stays
 * 'activating' until READY and shows the STATUS= text; and podsock's notify server sees the real pid of
 * a sender inside a unit.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { NotifyServer, type NotifyMessage } from '../../src/sd/notify-server.js';
import { hostEnv, installUnits, logFile, readLog, repoRoot, systemctl, uniqueName, unitProps, waitFor } from './harness.js';

const h = hostEnv(t, { podman: false });

if (h !== null) {
  await t.test('a Type=notify unit using the notify client is activating until READY=1 and shows STATUS=', async (t) => {
    const name = uniqueName('sdn');
    const log = logFile(h, name);
    const script = join(h.stateDir, `${name}.mjs`);
    const client = join(repoRoot, 'dist', 'sd', 'notify-client.js');
    writeFileSync(
      script,
      [
        `import { createNotifier } from ${JSON.stringify(client)};`,
        'const n = createNotifier(process.env);',
        "n.notify([['STATUS', 'warming up']]);",
        "setTimeout(() => { n.notify([['READY', '1'], ['STATUS', 'ready and serving']]); }, 2000);",
        'setInterval(() => {}, 1000);',
        '',
      ].join('\n'),
    );
    await installUnits(t, h, {
      [`${name}.service`]: [
        '[Service]',
        'Type=notify',
        'NotifyAccess=main',
        `ExecStart=${process.execPath} ${script}`,
        `StandardOutput=append:${log}`,
        `StandardError=append:${log}`,
        '',
      ].join('\n'),
    });
    const started = systemctl(h, 'start', `${name}.service`);
    const during = await waitFor('activating with the first STATUS', async () => {
      const p = await unitProps(h, `${name}.service`, ['ActiveState', 'StatusText']);
      return p.ActiveState === 'activating' && p.StatusText === 'warming up' ? p : false;
    }, 10_000, 50);
    t.equal(during.ActiveState, 'activating', 'activating before READY=1');
    t.equal(during.StatusText, 'warming up', 'STATUS= shown while activating');
    const r = await started;
    t.equal(r.exitCode, 0, `start succeeded ${readLog(log)}`);
    const p = await unitProps(h, `${name}.service`, ['ActiveState', 'StatusText', 'ActiveEnterTimestampMonotonic', 'ExecMainStartTimestampMonotonic']);
    t.equal(p.ActiveState, 'active');
    t.equal(p.StatusText, 'ready and serving');
    const waited = Number(p.ActiveEnterTimestampMonotonic) - Number(p.ExecMainStartTimestampMonotonic);
    t.ok(waited >= 1_900_000, `active only after READY=1 (${waited / 1e6} s after start)`);
  });

  await t.test("the notify server sees the real pid of a unit's process", async (t) => {
    const name = uniqueName('sds');
    const got: NotifyMessage[] = [];
    const server = await NotifyServer.create({ parentDir: h.stateDir, onMessage: (m) => got.push(m) });
    t.teardown(() => server.close());
    const script = join(h.stateDir, `${name}.py`);
    writeFileSync(
      script,
      [
        'import os, socket, sys, time',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        "s.sendto(('X_PID=%d' % os.getpid()).encode(), sys.argv[1])",
        'time.sleep(30)',
        '',
      ].join('\n'),
    );
    await installUnits(t, h, {
      [`${name}.service`]: ['[Service]', `ExecStart=/usr/bin/python3 ${script} ${server.socketPath}`, ''].join('\n'),
    });
    await systemctl(h, 'start', `${name}.service`);
    const msg = await waitFor('the datagram', async () => got[0], 10_000, 50);
    const main = await unitProps(h, `${name}.service`, ['MainPID']);
    t.equal(String(msg.pid), main.MainPID, 'SCM_CREDENTIALS pid is the unit main pid');
    t.same(msg.fields, [['X_PID', main.MainPID]]);
  });
}
