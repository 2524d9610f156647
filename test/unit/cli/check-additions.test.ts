/**
 * `podsock check`'s additions of the status work, end to end through the command: NAME from
 * `--config FILE`, the unit's start timeout and launcher, the start time recorded in the state
 * directory against IdleTimeout=, and Ready=healthy against the real podman's view of the image.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { checkCommand } from '../../../src/cli/check.js';
import { writeStatusFile } from '../../../src/status/status-file.js';
import { sample } from '../../helpers/status-sample.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'dist', 'bin', 'podsock.cjs');
const MISSING = 'localhost/podsock-check-no-such-image:0';

function podsock(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const base: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: '/nonexistent-runtime', HOME: '/nonexistent-home', PODSOCK_PODMAN: '/nonexistent/podman' };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NOTIFY_SOCKET', 'RUNTIME_DIRECTORY', 'XDG_CONFIG_HOME']) delete base[k];
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** checkCommand in this process as user 1000 (state directory under `xdg`); resolves with status and stderr. */
async function check(argv: string[], xdg: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await checkCommand({
    argv,
    env: { XDG_RUNTIME_DIR: xdg, HOME: '/nonexistent-home', PODSOCK_PODMAN: '/nonexistent/podman', PATH: process.env.PATH ?? '', ...env },
    uid: 1000,
    stdout: () => undefined,
    stderr: (s) => (err += s),
  });
  return { code, err };
}

function file(t: Test, name: string, lines: string[]): string {
  const path = join(tmpDir(t, 'podsock-ca-'), name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

void t.test('check --config FILE without NAME takes NAME from the file name', async (t) => {
  const cfg = file(t, 'web.container', ['[Container]', `Image=${MISSING}`, 'Network=none']);
  const r = podsock(['check', '--config', cfg]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /podsock check: 'web' is valid /);
  t.match(r.stdout, /--name podsock-web /);
  const other = file(t, 'web.conf', ['[Container]', `Image=${MISSING}`]);
  const bad = podsock(['check', `--config=${other}`]);
  t.equal(bad.status, 64);
  t.match(bad.stderr, /cannot take the service NAME from '--config' '.*web\.conf': expected a file named NAME\.container; give NAME too/);
  t.equal(podsock(['check']).status, 64, 'neither NAME nor --config');
  t.equal(podsock(['check', 'api', '--config', cfg]).status, 0, 'a NAME given wins');
});

void t.test('the unit: TimeoutStartSec= shorter than StartTimeout=, podsock without podsock-launch', async (t) => {
  const cfg = file(t, 'web.container', ['[Container]', `Image=${MISSING}`, 'Network=none', '[Podsock]', 'StartTimeout=2min']);
  const unit = file(t, 'web.service', ['[Service]', 'Type=notify', 'KillMode=mixed', 'TimeoutStartSec=30', `ExecStart=${process.execPath} ${bin} run web`]);
  const r = await check(['--config', cfg, '--unit', unit], tmpDir(t));
  t.match(r.err, new RegExp(`${unit}:4: warning: TimeoutStartSec=30 is shorter than StartTimeout '2min'.*\\[unit-start-timeout-short\\]`));
  t.match(r.err, new RegExp(`${unit}:5: warning: ExecStart= runs podsock without podsock-launch: .*\\[unit-without-launcher\\]`));
  const launcher = join(root, 'build', 'Release', 'podsock-launch');
  const good = file(t, 'good.service', ['[Service]', 'Type=notify', 'KillMode=mixed', 'TimeoutStartSec=3min', `ExecStart=${launcher} ${process.execPath} ${bin} run web`]);
  const g = await check(['--config', cfg, '--unit', good], tmpDir(t));
  t.notMatch(g.err, /unit-start-timeout-short|unit-without-launcher/);
  if (existsSync(launcher)) t.match(r.err, `run it as ExecStart=${launcher} NODE PODSOCK_SCRIPT run NAME`, 'names the launcher built here');
});

void t.test('IdleTimeout= against the start time recorded in the state directory', async (t) => {
  const xdg = tmpDir(t);
  const cfg = file(t, 'web.container', ['[Container]', `Image=${MISSING}`, 'Network=none', '[Podsock]', 'IdleTimeout=2s']);
  const before = await check(['--config', cfg], xdg);
  t.notMatch(before.err, /idle-shorter-than-seen-start/, 'nothing recorded: no warning');
  const status = join(xdg, 'podsock', 'state', 'web.status');
  writeStatusFile(status, sample({ name: 'web', coldStartsMs: [2600, 3100, 2900] }));
  const r = await check(['--config', cfg], xdg);
  t.match(r.err, new RegExp(`${cfg}:5: warning: IdleTimeout '2s' is shorter than the time this service usually takes to start, 2s 900ms \\(the median of the last 3 cold starts recorded in '${status}'\\).*\\[idle-shorter-than-seen-start\\]`));
  writeFileSync(status, 'garbage');
  t.match((await check(['--config', cfg], xdg)).err, /warning: Status file '.*web\.status' is not one podsock wrote: not JSON .*, ignoring \[status-unreadable\]/);
});

void t.test("Ready=healthy without HealthCmd=: the real podman's view of the image", async (t) => {
  const envFile = join(root, '.test-host', 'env.json');
  if (!existsSync(envFile)) return t.pass('no test host', { skip: 'no .test-host/env.json: no image to inspect' });
  const host = JSON.parse(readFileSync(envFile, 'utf8')) as { fixtureImage: string; CONTAINERS_CONF: string | null; podman: boolean };
  if (!host.podman) return t.pass('no podman', { skip: 'no podman on the test host' });
  const env = { PODSOCK_PODMAN: '', ...(host.CONTAINERS_CONF === null ? {} : { CONTAINERS_CONF: host.CONTAINERS_CONF }) };
  const xdg = tmpDir(t);
  mkdirSync(join(xdg, 'x'));
  // The fixture image is made by 'podman import' (no HEALTHCHECK).
  const cfg = file(t, 'web.container', ['[Container]', `Image=${host.fixtureImage}`, 'Pull=never', '[Podsock]', 'Mode=proxy', 'Backend=8080', 'Ready=healthy']);
  const r = await check(['--config', cfg], xdg, env);
  t.match(r.err, new RegExp(`${cfg}:7: warning: Ready=healthy without HealthCmd= and image '${host.fixtureImage.replaceAll('.', '\\.')}' defines no HEALTHCHECK: .*\\[healthy-without-healthcmd\\]`));
  const withCmd = file(t, 'api.container', ['[Container]', `Image=${host.fixtureImage}`, 'Pull=never', 'HealthCmd=/bin/true', '[Podsock]', 'Mode=proxy', 'Backend=8080', 'Ready=healthy']);
  t.notMatch((await check(['--config', withCmd], xdg, env)).err, /healthy-without-healthcmd/);
});
