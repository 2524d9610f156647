/**
 * The podman driver's helper commands, against small shell scripts standing in for podman (the real
 * podman cannot be made to print a megabyte, hang or vanish on demand).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { podmanCommand, type Podman } from '../../../src/runtime/podman.js';

const dir = mkdtempSync(join(tmpdir(), 'podsock-podman-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function fake(name: string, body: string): Podman {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return { binary: file, env: { PATH: '/usr/bin:/bin', ONLY: 'this' } };
}

void t.test('captures stdout, stderr and the exit code, with only the given environment', async (t) => {
  const p = fake('echo', 'echo "out:$*"; echo "err:$ONLY:${HOME:-unset}" >&2; exit 3');
  const r = await podmanCommand(p, ['image', 'exists', 'a b']);
  t.same(r, { exitCode: 3, stdout: 'out:image exists a b\n', stderr: 'err:this:unset\n' });
});

void t.test('exit 0 with no output', async (t) => {
  const r = await podmanCommand(fake('quiet', 'exit 0'), ['version']);
  t.same(r, { exitCode: 0, stdout: '', stderr: '' });
});

void t.test('output is bounded to 1 MiB per stream', async (t) => {
  const p = fake('loud', 'head -c 3000000 /dev/zero; head -c 1500000 /dev/zero >&2');
  const r = await podmanCommand(p, ['inspect']);
  t.equal(r.exitCode, 0);
  t.equal(r.stdout.length, 1024 * 1024);
  t.equal(r.stderr.length, 1024 * 1024);
});

void t.test('an abort kills the command and says so', async (t) => {
  const p = fake('hang', 'exec sleep 30');
  const ac = new AbortController();
  const started = Date.now();
  setTimeout(() => ac.abort(), 100);
  const r = await podmanCommand(p, ['wait', 'x'], ac.signal);
  t.not(r.exitCode, 0);
  t.equal(r.stderr, 'podman wait cancelled');
  t.ok(Date.now() - started < 20_000, 'did not wait for the sleep');
});

void t.test('an already aborted signal never lets the command run to completion', async (t) => {
  const marker = join(dir, 'ran');
  const p = fake('late', `sleep 1; touch '${marker}'`);
  const ac = new AbortController();
  ac.abort();
  const r = await podmanCommand(p, ['stop'], ac.signal);
  t.not(r.exitCode, 0);
  t.match(r.stderr, /cancelled$/);
  await new Promise((res) => setTimeout(res, 1500));
  t.throws(() => rmSync(marker), { code: 'ENOENT' });
});

void t.test('a binary that cannot be started is exit 127 with the reason', async (t) => {
  const r = await podmanCommand({ binary: join(dir, 'missing'), env: {} }, ['ps']);
  t.equal(r.exitCode, 127);
  t.match(r.stderr, /^podman ps could not start: spawn .*missing ENOENT$/);
});
