/**
 * The podman driver's helper commands, against small shell scripts standing in for podman (the real
 * podman cannot be made to print a megabyte, hang or vanish on demand).
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { podmanCommand, waitForFile, type Podman } from '../../../src/runtime/podman.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const dir = tmpDir(t, 'podsock-podman-test-');

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

void t.test('waitForFile: at once when there, on the write when later, null on abort', async (t) => {
  const read = (f: string): string | null => {
    try {
      const v = readFileSync(f, 'utf8').trim();
      return v === '' ? null : v;
    } catch {
      return null;
    }
  };
  const file = join(dir, 'later.pid');
  writeFileSync(join(dir, 'now.pid'), '11\n');
  t.equal(await waitForFile(join(dir, 'now.pid'), read, new AbortController().signal), '11');
  setTimeout(() => writeFileSync(file, ''), 30); // empty first: not yet a value
  setTimeout(() => writeFileSync(file, '4242\n'), 80);
  t.equal(await waitForFile(file, read, new AbortController().signal), '4242');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  t.equal(await waitForFile(join(dir, 'never.pid'), read, ac.signal), null);
  t.equal(await waitForFile(join(dir, 'never.pid'), read, ac.signal), null, 'already aborted');
});
