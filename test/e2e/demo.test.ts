/**
 * The demo, as the README runs it (`npm run demo`) and as `podsock demo`: real podman, the real
 * demo image, the real `podsock run` in proxy mode. Asserts on the printed story, line by line, the
 * exit status, and that neither a container nor a listener is left.
 */
import net from 'node:net';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { DEMO_DEFAULT_PORT } from '../../src/cli/demo.js';
import { childEnv, containerExists, freePort, hostEnv, podman, repoRoot, uniqueName } from './harness.js';

const h = hostEnv(t, { systemd: false });

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The lines from "listening" to "done." of an unattended run, one pattern per line, in order. */
function story(url: string): RegExp[] {
  const u = esc(url);
  const page = esc('"hello from a socket-activated container"');
  return [
    new RegExp(`^podsock is listening on ${u} \\(nothing running yet\\)$`),
    new RegExp(`^  \\(try it from another terminal: curl ${u}/\\)$`),
    new RegExp(`^→ first request: GET ${u}/$`),
    /^ {2}connection accepted: podsock starts the container \(podman run\)$/,
    /^ {2}container started on the first connection \(ready in \d+ ms\)$/,
    new RegExp(`^  first byte after \\d+ ms: ${page}$`),
    new RegExp(`^→ again while it runs: first byte after \\d+ ms: ${page}$`),
    /^waiting for 3s without connections\.\.\.$/,
    /^idle for 3s → stopping the container$/,
    new RegExp(`^container stopped; podsock keeps listening on ${u}$`),
    new RegExp(`^→ second request \\(cold start again\\): GET ${u}/$`),
    /^ {2}connection accepted: podsock starts the container \(podman run\)$/,
    /^ {2}container started again \(ready in \d+ ms\)$/,
    new RegExp(`^  first byte after \\d+ ms: ${page}$`),
    /^stopping podsock \(SIGTERM\)\.\.\.$/,
    /^podsock exited with status 0; no container left$/,
    /^done\.$/,
  ];
}

/** Whether 127.0.0.1:port can be bound, i.e. nobody (podsock) listens there any more. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** Check the output's story and return the timings it printed (ready and first byte, in ms). */
function checkStory(t: Test, stdout: string, url: string): number[] {
  const lines = stdout.split('\n');
  const from = lines.findIndex((l) => l.startsWith('podsock is listening on '));
  t.ok(from > 0, 'the story starts after the preamble');
  const told = lines.slice(from).filter((l) => l !== '');
  const want = story(url);
  t.equal(told.length, want.length, `${want.length} lines from listening to done:\n${told.join('\n')}`);
  want.forEach((re, i) => t.match(told[i] ?? '', re, `line ${i + 1}`));
  return [...told.join('\n').matchAll(/(?:ready in|first byte after) (\d+) ms/g)].map((m) => Number(m[1]));
}

if (h !== null) {
  await t.test('npm run demo, as the README has it: sets up podman, tells the story, exits 0, leaves nothing', async (t) => {
    const name = uniqueName('demo');
    const port = await freePort();
    const container = `podsock-${name}`;
    // The demo's own set-up decides about containers.conf, as on a fresh machine.
    const env = childEnv(h);
    delete env.CONTAINERS_CONF;
    const child = execa('npm', ['run', 'demo', '--', '--port', String(port), '--name', name], {
      cwd: repoRoot,
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 600_000,
    });
    t.teardown(async () => {
      child.kill('SIGTERM');
      await child;
      await podman(h, 'rm', '--force', '--ignore', container);
    });
    const r = await child;
    t.equal(r.exitCode, 0, `exit 0; stderr: ${String(r.stderr).slice(-2000)}`);
    const out = String(r.stdout);
    t.match(out, /^podsock demo: (image localhost\/podsock-demo:latest is up to date|built image localhost\/podsock-demo:latest from \S+ in \d+ ms)$/m);
    t.match(
      out,
      new RegExp(
        `^podsock demo: podsock run ${name} --listen 127\\.0\\.0\\.1:${port} --mode proxy --backend 8080 --ready http:/ --idle-timeout 3s ` +
          `--start-timeout 60s --log-level debug -- --pull=never localhost/podsock-demo:latest$`,
        'm',
      ),
    );
    const ms = checkStory(t, out, `http://127.0.0.1:${port}`);
    t.equal(ms.length, 5, 'two ready times and three first-byte times');
    t.comment(`ready ${ms[0]} ms, first byte ${ms[1]} ms; warm ${ms[2]} ms; ready again ${ms[3]} ms, first byte ${ms[4]} ms`);
    t.notOk(await containerExists(h, container), 'no container left');
    t.ok(await portFree(port), 'nothing listens on the port any more');
  });

  await t.test('podsock demo: the default port (or a free one), a usage error, a port in use', async (t) => {
    const bin = `${repoRoot}/dist/bin/podsock.cjs`;
    const env = childEnv(h);

    const bad = await execa(process.execPath, [bin, 'demo', '--idle-timeout', 'infinity'], { env, extendEnv: false, reject: false, stdin: 'ignore' });
    t.equal(bad.exitCode, 64);
    t.equal(String(bad.stderr).trim(), "podsock: podsock demo: --idle-timeout must be a finite, non-zero time span, got 'infinity' (see 'podsock demo --help')");

    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const taken = (blocker.address() as net.AddressInfo).port;
    const busy = await execa(process.execPath, [bin, 'demo', '--port', String(taken)], { env, extendEnv: false, reject: false, stdin: 'ignore', timeout: 300_000 });
    t.equal(busy.exitCode, 66, 'PODSOCK_ERR_LISTEN');
    t.match(String(busy.stderr), `podsock: Port ${taken} on 127.0.0.1 is in use: pick another with --port N`);

    const name = uniqueName('demo-default');
    const defaultFree = await portFree(DEMO_DEFAULT_PORT);
    const child = execa(process.execPath, [bin, 'demo', '--name', name], { env, extendEnv: false, reject: false, stdin: 'ignore', timeout: 600_000 });
    t.teardown(async () => {
      child.kill('SIGTERM');
      await child;
      await podman(h, 'rm', '--force', '--ignore', `podsock-${name}`);
    });
    const r = await child;
    t.equal(r.exitCode, 0, `exit 0; stderr: ${String(r.stderr).slice(-2000)}`);
    const out = String(r.stdout);
    const m = /^podsock is listening on http:\/\/127\.0\.0\.1:(\d+) /m.exec(out);
    const port = Number(m?.[1]);
    if (defaultFree) t.equal(port, DEMO_DEFAULT_PORT, 'the default port');
    else t.match(out, new RegExp(`^podsock demo: port ${DEMO_DEFAULT_PORT} is in use, using ${port}$`, 'm'), 'another port, and it says so');
    checkStory(t, out, `http://127.0.0.1:${port}`);
    t.notOk(await containerExists(h, `podsock-${name}`), 'no container left');
  });
}
