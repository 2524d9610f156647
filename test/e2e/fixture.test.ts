/**
 * The fixture server's environment-variable behaviours, through plain `podman run` (no systemd, no
 * podsock), so that tests built on the fixture can trust it: its own port with a listen delay and
 * the HTTP routes, socket activation with a TCP and a unix socket (echo with half-close, idle exit),
 * the exit-before-READY code, the notify datagrams, and SIGTERM handling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { childEnv, freePort, hostEnv, httpGet, podman, uniqueName, waitFor, type HostEnv } from './harness.js';

/** Lines a child process writes to one of its streams, and a way to await the nth of them. */
function lineCollector(stream: NodeJS.ReadableStream) {
  const lines: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  createInterface({ input: stream }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters.filter((w) => lines.length >= w.n)) w.resolve();
  });
  const until = (n: number, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (lines.length >= n) return resolve();
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(lines)}`)),
        timeoutMs,
      );
      waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  return { lines, until };
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function tempDir(t: Tap, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
type Tap = Parameters<typeof hostEnv>[0];

function fixtureRun(h: HostEnv, name: string, opts: string[], env: Record<string, string>): string[] {
  return [
    'run', '--name', name, '--replace', '--pull=never', ...h.podmanRunArgs, ...opts,
    '-e', `FIXTURE_NAME=${name}`, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    h.fixtureImage,
  ];
}

async function removeContainer(h: HostEnv, name: string): Promise<void> {
  await podman(h, 'rm', '-f', '--ignore', name);
}

await t.test('own port: HTTP routes after a listen delay; SIGTERM exits 0', async (t) => {
  const h = hostEnv(t, { systemd: false });
  if (h === null) return;
  const name = uniqueName('fx-port');
  const port = await freePort();
  t.teardown(() => removeContainer(h, name));
  const run = await podman(
    h,
    ...fixtureRun(h, name, ['-d', '-p', `127.0.0.1:${port}:8080`], { FIXTURE_LISTEN_DELAY_MS: '300' }),
  );
  t.equal(run.exitCode, 0, `podman run -d: ${run.stderr}`);
  const base = `http://127.0.0.1:${port}`;
  t.same(await waitFor('/health', () => httpGet(`${base}/health`, 2_000), 30_000), { status: 200, body: 'ok\n' });
  t.same(await httpGet(`${base}/a/b?q=1`), { status: 200, body: `hello from ${name} path=/a/b pid=1\n` });
  t.same(await httpGet(`${base}/status/418`), { status: 418, body: 'status 418\n' });
  const bulk = await httpGet(`${base}/bytes/200000`);
  t.equal(bulk.status, 200);
  t.equal(bulk.body, 'x'.repeat(200_000), '200000 bytes of x');

  const stop = await podman(h, 'stop', '-t', '20', name);
  t.equal(stop.exitCode, 0, `podman stop: ${stop.stderr}`);
  const state = await podman(h, 'inspect', '--format', '{{.State.ExitCode}}', name);
  t.equal(state.stdout.trim(), '0', 'SIGTERM made the fixture exit 0 (not 137 after the stop timeout)');
  const logs = await podman(h, 'logs', name);
  t.match(logs.stdout, `fixture ${name}: listening on 0.0.0.0:8080`);
  t.match(logs.stdout, `fixture ${name}: SIGTERM, exiting`);
});

await t.test('socket activation: TCP and unix fds, echo with half-close, idle exit', async (t) => {
  const h = hostEnv(t, { systemd: false });
  if (h === null) return;
  const name = uniqueName('fx-act');
  const port = await freePort();
  const unixPath = join(tempDir(t, 'podsock-fx-'), 'echo.sock');
  t.teardown(() => removeContainer(h, name));
  const pass = ['-E', 'XDG_RUNTIME_DIR', ...(h.containersConf === null ? [] : ['-E', 'CONTAINERS_CONF'])];
  const child = spawn(
    'systemd-socket-activate',
    [
      '-l', `127.0.0.1:${port}`, '-l', unixPath, ...pass, 'podman',
      ...fixtureRun(h, name, ['--rm', '--network=none'], { FIXTURE_IDLE_EXIT_S: '2' }),
    ],
    { env: childEnv(h), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const out = lineCollector(child.stdout);
  const err = lineCollector(child.stderr);
  // "Listening on 127.0.0.1:PORT as 3." and one for the unix socket, then it waits for a connection.
  await err.until(2, 10_000, 'systemd-socket-activate to listen');

  t.same(await httpGet(`http://127.0.0.1:${port}/over/tcp`, 60_000), {
    status: 200,
    body: `hello from ${name} path=/over/tcp pid=1\n`,
  });

  const reply = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(unixPath);
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => resolve(Buffer.concat(chunks).toString()));
    sock.on('error', reject);
    sock.setTimeout(20_000, () => sock.destroy(new Error('no reply on the unix socket')));
    sock.end('ping');
  });
  t.equal(reply, 'pingbytes=4\n', 'echo, then the byte count after the half-close');

  const code = await exited(child, 60_000);
  t.equal(code, 0, 'the fixture exited 0 when idle, and podman passed that on');
  t.ok(out.lines.includes(`fixture ${name}: listening on fds 3,4`), 'both activated fds adopted');
  t.ok(out.lines.includes(`fixture ${name}: idle for 2s, exiting`));
  t.same(
    out.lines.filter((l) => l.includes(' connection #')).map((l) => l.replace(/ from .*? mode/, ' mode')),
    [`fixture ${name}: connection #1 via fd 3 mode=http`, `fixture ${name}: connection #2 via fd 4 mode=echo`],
  );
});

await t.test('FIXTURE_EXIT_BEFORE_READY sets the exit status', async (t) => {
  const h = hostEnv(t, { systemd: false });
  if (h === null) return;
  const name = uniqueName('fx-exit');
  t.teardown(() => removeContainer(h, name));
  const run = await podman(h, ...fixtureRun(h, name, ['--rm', '--network=none'], { FIXTURE_EXIT_BEFORE_READY: '7' }));
  t.equal(run.exitCode, 7);
  t.match(run.stdout, `fixture ${name}: exiting with 7 before READY`);
});

await t.test('notify: STATUS= then READY=1 with the extra lines; NEVER_READY sends only STATUS=', async (t) => {
  const h = hostEnv(t, { systemd: false });
  if (h === null) return;
  const dir = tempDir(t, 'podsock-fx-notify-');
  // Node cannot receive unix datagrams; a python3 receiver prints each one as a JSON string.
  const receiver = spawn(
    '/usr/bin/python3',
    [
      '-c',
      [
        'import json, socket, sys',
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        's.bind(sys.argv[1])',
        "print('bound', flush=True)",
        'while True: print(json.dumps(s.recv(4096).decode()), flush=True)',
      ].join('\n'),
      join(dir, 'notify.sock'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => {
    receiver.kill();
  });
  const got = lineCollector(receiver.stdout);
  await got.until(1, 10_000, 'the receiver to bind');

  // --sdnotify=ignore keeps podman and conmon out of the way: the datagrams arrive unfiltered.
  const notifyOpts = ['--rm', '--network=none', '--sdnotify=ignore', '-v', `${dir}:/run/fx-notify`];
  const env = { NOTIFY_SOCKET: '/run/fx-notify/notify.sock', FIXTURE_IDLE_EXIT_S: '1' };
  const name = uniqueName('fx-notify');
  t.teardown(() => removeContainer(h, name));
  const run = await podman(
    h,
    ...fixtureRun(h, name, notifyOpts, { ...env, FIXTURE_STATUS: 'warming up', FIXTURE_NOTIFY_EXTRA: 'X_ONE=1\\nX_TWO=2' }),
  );
  t.equal(run.exitCode, 0, `exits 0 after 1 s idle: ${run.stderr}`);
  await got.until(3, 10_000, 'two datagrams');
  t.same(got.lines.slice(1).map((l) => JSON.parse(l) as string), ['STATUS=warming up', 'READY=1\nX_ONE=1\nX_TWO=2']);

  const never = await podman(h, ...fixtureRun(h, name, notifyOpts, { ...env, FIXTURE_NEVER_READY: '1' }));
  t.equal(never.exitCode, 0, `exits 0 after 1 s idle: ${never.stderr}`);
  await got.until(4, 10_000, 'one more datagram');
  t.same(got.lines.slice(3).map((l) => JSON.parse(l) as string), [`STATUS=serving as ${name}`]);
  t.match(never.stdout, `fixture ${name}: never sending READY=1`);
});

await t.test('FIXTURE_IGNORE_SIGTERM: podman stop has to kill it', async (t) => {
  const h = hostEnv(t, { systemd: false });
  if (h === null) return;
  const name = uniqueName('fx-term');
  t.teardown(() => removeContainer(h, name));
  const run = await podman(h, ...fixtureRun(h, name, ['-d', '--network=none'], { FIXTURE_IGNORE_SIGTERM: '1' }));
  t.equal(run.exitCode, 0, `podman run -d: ${run.stderr}`);
  await waitFor(
    'the fixture to start',
    async () => (await podman(h, 'logs', name)).stdout.includes('listening on'),
    30_000,
  );
  const stop = await podman(h, 'stop', '-t', '1', name);
  t.equal(stop.exitCode, 0, `podman stop: ${stop.stderr}`);
  const state = await podman(h, 'inspect', '--format', '{{.State.ExitCode}}', name);
  t.equal(state.stdout.trim(), '137', 'killed by SIGKILL after the stop timeout');
  t.match((await podman(h, 'logs', name)).stdout, `fixture ${name}: ignoring SIGTERM`);
});
