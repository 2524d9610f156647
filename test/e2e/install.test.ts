/**
 * The installed command, as the README's "Install" section has it: the repository packed with `npm pack`,
 * the tarball installed with `npm install -g --prefix PREFIX` (npm runs the package's install script:
 * node-gyp builds the addon and podsock-launch, scripts/install-command.mjs copies podsock-launch to
 * dist/bin/podsock, which npm links as PREFIX/bin/podsock), and a socket-activated service run through
 * that command under the test host's systemd user manager, from the installed package's own
 * units/podsock@.service (`ExecStart=/usr/bin/env podsock run %i`), copied verbatim. A drop-in adds only
 * what this host needs: PATH with PREFIX/bin, the host's XDG_RUNTIME_DIR and CONTAINERS_CONF, a private
 * configuration directory, and log files (no journald here).
 *
 * What it shows: the launcher, found on PATH, execs node in the unit's main pid (`node …/podsock.cjs run
 * NAME`, with PODSOCK_PLAN in its environment, which only the launcher sets); no podman stays in the
 * service's process tree (podman runs detached, conmon stays); the first activation leaves a plan and the
 * second one's podman is started by the launcher from it (PODSOCK_PRESTART=pid=…) and kept by podsock
 * (no "out-of-date plan" line); both activations answer; nothing is left after `systemctl --user stop`.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import type { Test } from 'tap';
import { containerExists, descendants, freePort, hostEnv, httpGet, logFile, podman, readLog, repoRoot, systemctl, uniqueName, waitFor, type HostEnv } from './harness.js';
import { serviceState } from './podsock-units.js';

const h = hostEnv(t);

// node-gyp compiles and links with these (its Makefile links with $(CXX), g++); Debian: python3 make g++.
const BUILD_TOOLS = ['python3', 'make', 'g++'];
// npm install runs node-gyp: on a loaded 2-core machine that can take a minute or more.
const NPM_TIMEOUT_MS = 600_000;

/** The directories of PATH holding an executable `file`, as a shell would look it up. */
function onPath(file: string, path: string | undefined): boolean {
  return (path ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, file)));
}

/**
 * The environment for npm: this process's, without what `npm test` passes to its scripts (npm_config_*
 * and the like would override the user's own npm configuration, e.g. the prefix) and without the
 * socket-activation variables of whoever started the tests. npm then reads its configuration as it does
 * in a user's shell.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k.startsWith('LISTEN_') || k === 'NOTIFY_SOCKET' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return env;
}

/** Runs npm; throws with its output when it fails, so that a failing pack or install fails the test. */
async function npm(args: string[], cwd: string): Promise<string> {
  const r = await execa('npm', args, { cwd, env: npmEnv(), extendEnv: false, reject: false, stdin: 'ignore', all: true, timeout: NPM_TIMEOUT_MS });
  if (r.timedOut) throw new Error(`'npm ${args.join(' ')}' did not finish within ${NPM_TIMEOUT_MS} ms:\n${r.all ?? ''}`);
  if (r.exitCode !== 0) throw new Error(`'npm ${args.join(' ')}' exited ${r.exitCode ?? r.signal ?? '?'}:\n${r.all ?? ''}`);
  return r.all ?? '';
}

/** A process's argv or environment from /proc, NUL-separated. */
function procStrings(pid: string, file: 'cmdline' | 'environ'): string[] {
  return readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\0').filter((s) => s !== '');
}

/** podsock's state directory, where podsock-launch keeps plans (native/launch.c plan_path, src/paths.ts stateDirFor). */
function stateDir(h: HostEnv): string {
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run/podsock/state' : join(h.xdgRuntimeDir, 'podsock', 'state');
}

/** Packs the repository into `work` and installs the tarball into `prefix` as the README says. */
async function packAndInstall(t: Test, work: string, prefix: string): Promise<void> {
  // --ignore-scripts: `prepare` would rebuild dist/ in the repository, under every other test using it;
  // `npm test` has just built it (pretest), and the README's `npm ci` does the same for a user.
  const packed = await npm(['pack', '--ignore-scripts', '--pack-destination', work], repoRoot);
  const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'));
  t.equal(tarballs.length, 1, 'npm pack wrote one tarball', { packed });
  const tarball = join(work, tarballs[0] ?? 'missing.tgz');
  // node-gyp takes Node's headers from nodejs.org unless told where they are installed: the README says
  // to add --nodedir when they are (NodeSource's nodejs package has them in /usr/include/node).
  const nodeRoot = dirname(dirname(process.execPath));
  const nodedir = (await npm(['config', 'get', 'nodedir'], work)).trim();
  const withHeaders = /^(|undefined|null)$/.test(nodedir) && existsSync(join(nodeRoot, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodeRoot}`] : [];
  const started = Date.now();
  await npm(['install', '-g', '--prefix', prefix, '--prefer-offline', ...withHeaders, tarball], work);
  t.comment(`npm install -g of the tarball took ${Date.now() - started} ms`);
}

if (h !== null) {
  await t.test('the packed tarball installed with npm install -g --prefix runs a unit from units/podsock@.service through the launcher', async (t) => {
    const missing = BUILD_TOOLS.filter((tool) => !onPath(tool, process.env.PATH));
    if (!onPath('npm', process.env.PATH)) missing.unshift('npm');
    if (missing.length > 0) {
      const why = `cannot build podsock's native parts here: ${missing.join(', ')} not on PATH`;
      if (process.env.CI === 'true') t.fail(why);
      else t.pass('build tools missing', { skip: why });
      return;
    }

    const work = mkdtempSync(join(tmpdir(), 'inst-'));
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const prefix = join(work, 'prefix');
    await packAndInstall(t, work, prefix);

    // The installed command: PREFIX/bin/podsock -> the package's dist/bin/podsock, a copy of podsock-launch
    // built on this machine by the install script (an ELF executable, not the node script).
    const pkg = join(prefix, 'lib', 'node_modules', 'podsock');
    const command = join(prefix, 'bin', 'podsock');
    t.equal(realpathSync(command), realpathSync(join(pkg, 'dist', 'bin', 'podsock')), 'PREFIX/bin/podsock is the package\'s dist/bin/podsock');
    const launcherBytes = readFileSync(join(pkg, 'build', 'Release', 'podsock-launch'));
    const commandBytes = readFileSync(command);
    t.equal(commandBytes.subarray(0, 4).toString('latin1'), '\x7fELF', 'the command is a native executable');
    t.ok(commandBytes.equals(launcherBytes), 'the command is a copy of the podsock-launch the install script built');
    t.ok(existsSync(join(pkg, 'build', 'Release', 'podsock_native.node')), 'node-gyp built the addon');

    const nodeDir = dirname(process.execPath);
    const path = [join(prefix, 'bin'), '/usr/local/bin', '/usr/bin', '/bin'];
    if (!path.includes(nodeDir)) path.push(nodeDir);
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const v = await execa(command, ['--version'], { env: { PATH: path.join(':') }, extendEnv: false, reject: false, stdin: 'ignore' });
    t.equal(v.stdout.trim(), `podsock ${version}`, 'podsock --version from the installed command');

    // The service: the installed template verbatim, a socket, and a drop-in with what this host needs.
    const template = readFileSync(join(pkg, 'units', 'podsock@.service'), 'utf8');
    t.match(template, /^ExecStart=\/usr\/bin\/env podsock run %i$/m, 'the shipped template runs `/usr/bin/env podsock run %i`');
    const name = uniqueName('inst');
    const unit = `podsock@${name}.service`;
    const containerName = `podsock-${name}`;
    const port = await freePort();
    const log = logFile(h, name);
    const configDir = join(work, 'config');
    mkdirSync(configDir, { recursive: true });
    const vol = h.podmanRunArgs[0] === '-v' && h.podmanRunArgs[1] !== undefined ? [`Volume=${h.podmanRunArgs[1]}`] : [];
    writeFileSync(
      join(configDir, `${name}.container`),
      ['[Container]', `Image=${h.fixtureImage}`, 'Network=none', 'Pull=never', ...vol, `Environment=FIXTURE_NAME=${name}`, '', '[Podsock]', 'IdleTimeout=infinity', ''].join('\n'),
    );

    const templateFile = join(h.unitDir, 'podsock@.service');
    const socketFile = join(h.unitDir, `${name}.socket`);
    const dropInDir = join(h.unitDir, `${unit}.d`);
    let planPath: string | null = null;
    t.teardown(async () => {
      // One transaction stops the socket and the service, so the socket cannot start the service again.
      await systemctl(h, 'stop', `${name}.socket`, unit);
      await systemctl(h, 'reset-failed', `${name}.socket`, unit);
      rmSync(socketFile, { force: true });
      rmSync(dropInDir, { recursive: true, force: true });
      // Another run's podsock@*.service may use the same template file: leave it to the last one.
      const others = existsSync(h.unitDir) ? readdirSync(h.unitDir).filter((f) => /^podsock@.+\.service\.d$/.test(f)) : [];
      if (others.length === 0) rmSync(templateFile, { force: true });
      await systemctl(h, 'daemon-reload');
      await waitFor('the container to be gone', async () => !(await containerExists(h, containerName)), 30_000).catch(() => undefined);
      await podman(h, 'rm', '--force', '--ignore', containerName);
      if (planPath !== null) rmSync(planPath, { force: true });
      rmSync(join(stateDir(h), `${name}.failures`), { force: true });
    });
    mkdirSync(dropInDir, { recursive: true });
    writeFileSync(templateFile, template);
    writeFileSync(socketFile, ['[Socket]', `ListenStream=127.0.0.1:${port}`, `Service=${unit}`, ''].join('\n'));
    writeFileSync(
      join(dropInDir, 'test.conf'),
      [
        '[Service]',
        `Environment=PATH=${path.join(':')}`,
        `Environment=XDG_RUNTIME_DIR=${h.xdgRuntimeDir}`,
        ...(h.containersConf === null ? [] : [`Environment=CONTAINERS_CONF=${h.containersConf}`]),
        `Environment=PODSOCK_CONFIG_DIR=${configDir}`,
        `StandardOutput=append:${log}`,
        `StandardError=append:${log}`,
        '',
      ].join('\n'),
    );
    const reload = await systemctl(h, 'daemon-reload');
    t.equal(reload.exitCode, 0, 'daemon-reload', { stderr: reload.stderr });
    const shown = await systemctl(h, 'show', '-p', 'FragmentPath', '-p', 'ExecStart', unit);
    t.match(shown.stdout, `FragmentPath=${templateFile}`, 'the service is an instance of the template');
    t.match(shown.stdout, `argv[]=/usr/bin/env podsock run ${name} `, 'ExecStart is the template\'s');
    const started = await systemctl(h, 'start', `${name}.socket`);
    t.equal(started.exitCode, 0, `${name}.socket started`, { stderr: started.stderr });

    const script = realpathSync(join(pkg, 'dist', 'bin', 'podsock.cjs'));
    /** One activation: a request answered by the container, the main process checked, then stopped. */
    const activation = async (label: string): Promise<Map<string, string>> => {
      const r = await httpGet(`http://127.0.0.1:${port}/${label}`, 90_000);
      t.equal(r.status, 200, `${label}: answered`);
      t.match(r.body, new RegExp(`^hello from ${name} path=/${label} pid=1\\n$`), `${label}: by the container`);
      const s = await serviceState(h, `podsock@${name}`);
      t.equal(s.ActiveState, 'active', `${label}: the service is active`);
      const main = s.MainPID ?? '0';
      // The launcher execs node in its own process: the main pid runs node with the installed script.
      const argv = procStrings(main, 'cmdline');
      t.same(argv.slice(1), ['--v8-pool-size=1', script, 'run', name], `${label}: the main pid runs node --v8-pool-size=1 PREFIX/.../podsock.cjs run NAME`);
      t.equal(basename(readlinkSync(`/proc/${main}/exe`)), 'node', `${label}: its executable is node`);
      t.equal(readlinkSync(`/proc/${main}/exe`), realpathSync(argv[0] ?? ''), `${label}: node as found on the unit's PATH`);
      const env = new Map(
        procStrings(main, 'environ').map((kv) => {
          const eq = kv.indexOf('=');
          return [kv.slice(0, eq), kv.slice(eq + 1)] as [string, string];
        }),
      );
      // Only podsock-launch sets PODSOCK_PLAN: podsock run by node from a plain script has none.
      const plan = env.get('PODSOCK_PLAN') ?? '';
      t.ok(dirname(plan) === stateDir(h) && /^launch-[0-9a-f]{16}\.plan$/.test(basename(plan)), `${label}: started through podsock-launch`, { PODSOCK_PLAN: plan });
      if (plan !== '') planPath = plan;
      // podman runs detached and exits once the container runs; conmon stays, below podsock.
      const tree = await waitFor(
        `${label}: conmon and no podman below the main pid`,
        async () => {
          const d = descendants(Number(main));
          return d.some((p) => p.comm === 'conmon') && !d.some((p) => p.comm === 'podman') ? d : false;
        },
        15_000,
      );
      t.ok(tree.some((p) => p.comm === 'conmon'), `${label}: conmon is in the service's process tree`);
      t.notOk(tree.some((p) => p.comm === 'podman'), `${label}: no podman process is left in it`);

      await systemctl(h, 'stop', unit);
      const after = await serviceState(h, `podsock@${name}`);
      t.equal(after.Result, 'success', `${label}: stopped cleanly`);
      t.notOk(await containerExists(h, containerName), `${label}: no container after stop`);
      return env;
    };

    const first = await activation('first');
    t.equal(first.get('PODSOCK_PRESTART'), 'none no plan yet', 'first: no plan yet, so podsock started podman itself');
    t.ok(planPath !== null && existsSync(planPath), 'first: the activation left a plan for the launcher');

    const second = await activation('second');
    t.match(second.get('PODSOCK_PRESTART') ?? '', /^pid=\d+ digest=[0-9a-f]{64}( notify=\d+:\S+)+$/, 'second: podsock-launch started podman from the plan');
    const text = readLog(log);
    t.notMatch(text, /out-of-date plan|Cannot take over the notify sockets/, 'second: podsock kept the podman the launcher started');
    t.equal(text.split(`Container '${containerName}' ready`).length - 1, 2, 'podsock logged two ready containers', { log: text });
  });
}
