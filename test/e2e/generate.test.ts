/**
 * `podsock generate` end to end: the generated NAME.socket and NAME.service, installed unchanged
 * (plus log redirection, as journald does not run here) into the real systemd user manager, serve a
 * request through real podman, in handover and in proxy mode; and `podsock check` finds nothing to
 * warn about in what generate wrote.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { childEnv, containerExists, freePort, hostEnv, httpGet, installUnits, logFile, readLog, systemctl, uniqueName, waitFor, type HostEnv } from './harness.js';
import { podsockBin, serviceState, waitState } from './podsock-units.js';

const h = hostEnv(t);

async function podsock(h: HostEnv, args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, [podsockBin, ...args], { env: childEnv(h), extendEnv: false, reject: false, stdin: 'ignore', timeout: 120_000 });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Generate units for `name` into a fresh directory, install them, start the socket; returns the port and files. */
async function generated(t: Test, h: HostEnv, name: string, extra: string[], container: string[]): Promise<{ port: number; dir: string; log: string; unitDir: string }> {
  const port = await freePort();
  const dir = t.testdir({});
  const env = [`XDG_RUNTIME_DIR=${h.xdgRuntimeDir}`, ...(h.containersConf === null ? [] : [`CONTAINERS_CONF=${h.containersConf}`])];
  const g = await podsock(h, [
    'generate', name, '--listen', `127.0.0.1:${port}`, '--user', '--config-dir', dir, '--output', dir,
    ...env.flatMap((e) => ['--env', e]), ...extra, '--', ...container,
  ]);
  t.equal(g.exitCode, 0, `generate: ${g.stderr}`);
  t.match(g.stdout, /\nNext steps:\n/);
  const log = logFile(h, name);
  const socket = readFileSync(join(dir, `${name}.socket`), 'utf8');
  // [Service] is the last section of the generated service, so these lines land in it.
  const service = `${readFileSync(join(dir, `${name}.service`), 'utf8')}StandardOutput=append:${log}\nStandardError=append:${log}\n`;
  await installUnits(t, h, { [`${name}.socket`]: socket, [`${name}.service`]: service });
  t.teardown(async () => {
    await waitFor('the container to be gone', async () => !(await containerExists(h, `podsock-${name}`)), 30_000).catch(() => undefined);
  });
  const started = await systemctl(h, 'start', `${name}.socket`);
  t.equal(started.exitCode, 0, `start ${name}.socket: ${started.stderr}`);
  return { port, dir, log, unitDir: h.unitDir };
}

if (h !== null) {
  const fixture = [...h.podmanRunArgs, '--pull=never'];

  await t.test('handover: the generated units serve a request, check is clean, stop leaves nothing', async (t) => {
    const name = uniqueName('gh');
    const g = await generated(t, h, name, ['--idle-timeout', 'infinity'], [...fixture, '--network', 'none', '-e', `FIXTURE_NAME=${name}`, h.fixtureImage]);
    const r = await httpGet(`http://127.0.0.1:${g.port}/generated`, 60_000);
    t.equal(r.status, 200);
    t.match(r.body, new RegExp(`^hello from ${name} path=/generated pid=1\\n$`), 'the container answered on the handed-over socket');
    const s = await waitState(h, name, ['active'], 30_000);
    t.match(s.StatusText, /^Serving: container 'podsock-[^']+' ready in \d+ ms \(handover mode, no idle timeout\)/);

    const c = await podsock(h, ['check', name, '--config', join(g.dir, `${name}.container`), '--unit', join(g.unitDir, `${name}.service`)]);
    t.equal(c.exitCode, 0);
    t.match(c.stdout, new RegExp(`^\\S*podman run --name podsock-${name} --replace --rm `));
    t.match(c.stderr, new RegExp(`^podsock check: '${name}' is valid \\([^)]*\\); no warnings\\n?$`), 'no warnings for what generate wrote');

    await systemctl(h, 'stop', `${name}.service`);
    const after = await serviceState(h, name);
    t.equal(after.ActiveState, 'inactive');
    t.equal(after.Result, 'success');
    t.notOk(await containerExists(h, `podsock-${name}`), 'no container after stop');
    t.match(readLog(g.log), /Starting/);
  });

  await t.test('proxy: the generated units forward to the container port and stop when idle', async (t) => {
    const name = uniqueName('gp');
    const g = await generated(
      t,
      h,
      name,
      ['--mode', 'proxy', '--backend', '8080', '--ready', 'http:/health', '--idle-timeout', '3s'],
      [...fixture, '-e', `FIXTURE_NAME=${name}`, h.fixtureImage],
    );
    const r = await httpGet(`http://127.0.0.1:${g.port}/proxied`, 60_000);
    t.equal(r.status, 200);
    t.match(r.body, new RegExp(`^hello from ${name} path=/proxied pid=1\\n$`));
    const s = await serviceState(h, name);
    t.match(s.StatusText, /proxy mode/);
    // IdleTimeout=3s from --idle-timeout: the service stops by itself, cleanly, and the socket stays.
    const idle = await waitState(h, name, ['inactive'], 60_000);
    t.equal(idle.Result, 'success');
    t.notOk(await containerExists(h, `podsock-${name}`), 'no container after the idle stop');
    const again = await httpGet(`http://127.0.0.1:${g.port}/again`, 60_000);
    t.match(again.body, /path=\/again/, 'the socket starts it again');
  });
}
