/**
 * Quadlet fidelity under the real systemd user manager: a drop-in of the template's directory
 * (BASE@.container.d/) sets the container's environment from %-specifiers, and the values podsock
 * expands are the ones systemd itself expands for the same unit (read back from the unit's own
 * Environment= through `systemctl show`). The unit ('BASE-svc@blue-sky.service') is not named after
 * the service NAME ('BASE@cfg'), so the values can only come from the unit podsock runs in.
 * podsock-launch's plan goes stale when a drop-in is added or changed.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { containerExists, freePort, hostEnv, httpGet, installUnits, logFile, podman, readLog, systemctl, uniqueName } from './harness.js';
import { installPodsockService, podsockBin, podsockLaunch, serviceState } from './podsock-units.js';

const h = hostEnv(t);

// Every specifier both expand the same way here. Left out: %S and %L (systemd 252 gives the user
// manager ~/.config and ~/.config/log; podsock follows systemd 254 and later, $XDG_STATE_HOME),
// %q and %s (the pretty host name and $SHELL may hold spaces, which `systemctl show` would quote).
const SPECIFIERS = ['n', 'N', 'p', 'P', 'i', 'I', 'j', 'J', 'f', 'h', 't', 'E', 'C', 'T', 'V', 'd', 'U', 'u', 'G', 'g', 'H', 'l', 'm', 'b', 'v', 'a', 'o', 'w'];
const TEXT = `${SPECIFIERS.map((s) => `${s}:%${s}`).join('|')}|pct:%%`;

/** 'a:1|b:2' as { a: '1', b: '2' }. */
function pairs(s: string | undefined): Record<string, string> {
  return Object.fromEntries((s ?? '').split('|').map((p) => [p.slice(0, p.indexOf(':')), p.slice(p.indexOf(':') + 1)]));
}

if (h !== null) {
  await t.test('%-specifiers of the running unit reach the container from a drop-in, as systemd expands them', async (t) => {
    const base = uniqueName('qs');
    const name = `${base}@cfg`;
    const unit = `${base}-svc@blue-sky`;
    const containerName = `${base}-ctr`;
    t.teardown(async () => {
      await podman(h, 'rm', '--force', '--ignore', containerName);
    });
    const configDir = join(h.stateDir, 'config', base);
    const dropins = join(configDir, `${base}@.container.d`);
    mkdirSync(dropins, { recursive: true });
    writeFileSync(
      join(configDir, `${name}.container`),
      ['[Container]', `Image=${h.fixtureImage}`, 'Network=none', 'Pull=never', `ContainerName=${containerName}`, ...h.podmanRunArgs.filter((a) => a !== '-v').map((v) => `Volume=${v}`), 'Environment=FIXTURE_NAME=from-the-file', '[Podsock]', 'IdleTimeout=infinity', ''].join('\n'),
    );
    writeFileSync(join(dropins, '50-unit.conf'), `[Container]\nEnvironment=FIXTURE_NAME=${TEXT}\n`);

    const port = await freePort();
    const log = logFile(h, unit);
    await installUnits(t, h, {
      [`${unit}.socket`]: ['[Socket]', `ListenStream=127.0.0.1:${port}`, ''].join('\n'),
      [`${unit}.service`]: [
        '[Service]',
        'Type=notify',
        'NotifyAccess=main',
        'KillMode=mixed',
        `Environment=XDG_RUNTIME_DIR=${h.xdgRuntimeDir}`,
        `Environment=PODSOCK_CONFIG_DIR=${configDir}`,
        ...(h.containersConf === null ? [] : [`Environment=CONTAINERS_CONF=${h.containersConf}`]),
        `Environment=SYSTEMD_EXPANDED=${TEXT}`,
        `ExecStart=${process.execPath} ${podsockBin} run ${name} --log-level debug`,
        `StandardOutput=append:${log}`,
        `StandardError=append:${log}`,
        `ExecStopPost=-/usr/bin/podman rm --force --ignore ${containerName}`,
        '',
      ].join('\n'),
    });
    const started = await systemctl(h, 'start', `${unit}.socket`);
    t.equal(started.exitCode, 0, started.stderr);

    const r = await httpGet(`http://127.0.0.1:${port}/`, 60_000).catch((err: Error) => ({ status: 0, body: `${err.message}\n${readLog(log)}` }));
    t.equal(r.status, 200, r.body);
    const fromContainer = /^hello from (.*) path=\/ pid=1\n$/.exec(r.body)?.[1];
    t.ok(fromContainer, `the fixture's reply names it: ${r.body}`);

    const shown = await systemctl(h, 'show', '-p', 'Environment', `${unit}.service`);
    // systemctl show quotes an assignment holding characters such as '|'.
    const fromSystemd = /(?:^|\s)"?SYSTEMD_EXPANDED=([^"\s]*)/.exec(shown.stdout)?.[1];
    t.ok(fromSystemd, `systemd's expansion: ${shown.stdout}`);
    t.same(pairs(fromContainer), pairs(fromSystemd), 'podsock and systemd give every specifier the same value');
    t.match(pairs(fromContainer), { n: `${unit}.service`, i: 'blue-sky', I: 'blue/sky', f: '/blue/sky', p: `${base}-svc`, pct: '%' });
  });

  await t.test('a drop-in added or changed makes the plan of podsock-launch stale', { skip: existsSync(podsockLaunch) ? false : 'podsock-launch is not built' }, async (t) => {
    const name = uniqueName('qsl');
    const svc = await installPodsockService(t, h, name, { launcher: true, podsock: ['IdleTimeout=infinity'] });
    const count = (text: string, needle: string): number => text.split(needle).length - 1;

    /** One activation answered by the container as FIXTURE_NAME `as`, then stopped; podsock's log so far. */
    const activation = async (label: string, as: string): Promise<string> => {
      const r = await httpGet(svc.url(`/${label}`), 60_000);
      t.equal(r.body, `hello from ${as} path=/${label} pid=1\n`, `${label}: answered by the container as '${as}'`);
      const s = await serviceState(h, name);
      t.match(readFileSync(`/proc/${s.MainPID ?? '0'}/cmdline`, 'utf8').replace(/\0/g, ' '), /dist\/bin\/podsock\.cjs run /, `${label}: the main pid is podsock`);
      await systemctl(h, 'stop', `${name}.service`);
      t.notOk(await containerExists(h, svc.containerName), `${label}: no container after stop`);
      return readLog(svc.log);
    };

    await activation('first', name);
    let log = await activation('second', name);
    t.equal(count(log, 'adopted it'), 1, 'second: started from the plan');

    const dir = join(svc.configDir, `${name}.container.d`);
    mkdirSync(dir);
    writeFileSync(join(dir, '10-name.conf'), '[Container]\nEnvironment=FIXTURE_NAME=from-a-drop-in\n');
    log = await activation('third', 'from-a-drop-in');
    t.equal(count(log, 'podsock-launch did not start podman: stale'), 1, 'third: a new drop-in made the plan stale');
    log = await activation('fourth', 'from-a-drop-in');
    t.equal(count(log, 'adopted it'), 2, 'fourth: the new plan was used');

    writeFileSync(join(dir, '10-name.conf'), '[Container]\nEnvironment=FIXTURE_NAME=edited\n');
    log = await activation('fifth', 'edited');
    t.equal(count(log, 'podsock-launch did not start podman: stale'), 2, 'fifth: an edited drop-in made the plan stale');
  });
}
